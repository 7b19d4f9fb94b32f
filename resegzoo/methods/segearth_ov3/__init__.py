"""SegEarth-OV3 (Li et al., arXiv 2512.08730): training-free open-vocabulary segmentation with
SAM 3, on transformers' ``Sam3Model``. ``model`` scores windows, ``fusion`` is the paper's rule,
``tokenizer`` gives SAM 3's text tokens offline. Heavy imports stay inside functions."""
