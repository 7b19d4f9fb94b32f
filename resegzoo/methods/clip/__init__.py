"""The ``clip`` method: ReSeg-CLIP and the peer CLIP methods (MaskCLIP, SCLIP, ClearCLIP, NACLIP,
SegEarth-OV), one package like every method.

``method.py`` (the method: window scores from the encoder and the text, the readout, the CLS bias),
``build.py`` (a model spec into the masked-attention encoder the recipe configures; the schedule
checked against the mask generator; the text cache's key), ``encoder.py`` (open_clip's ViT re-run with
segment-masked SDPA attention, dense readout), ``schedule.py`` (attention rules -> boolean masks),
``last_block.py`` (the peers' last-block attention), ``text.py`` (prompt templates, text embeddings
and their cache), ``extras.py`` (the peers' CLS bias and majority vote).
"""

#: the method's registered name (``method: clip``, ``--method clip``)
NAME = "clip"
