"""ProC-SAM3 (Song et al., arXiv 2606.21863): SegEarth-OV3's SAM 3 pass with several prompts per
class (prompt pools, :mod:`resegzoo.prompt_pools`) and Presence-Guided Residual Fusion
(``fusion``). The model is SegEarth-OV3's (:mod:`resegzoo.methods.segearth_ov3.model`): one image
pass per window, the prompts batched through the prompt encoder and decoders."""
