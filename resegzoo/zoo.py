"""The zoo: typed records of CLIP variants and SAM checkpoints, read from registry/*.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

CheckpointFormat = Literal["openclip-pickle", "skyclip-zip", "safetensors", "openclip-pretrained", "custom"]


@dataclass(frozen=True)
class ClipVariant:
    """One CLIP variant of the zoo (compare timm's PretrainedCfg)."""

    name: str
    #: open_clip model name; OpenAI-derived weights need the ``-quickgelu`` configs.
    architecture: str
    format: CheckpointFormat
    license: str
    citation: str
    hf_repo: Optional[str] = None
    hf_file: Optional[str] = None
    url: Optional[str] = None
    #: file inside the archive at ``url`` (SkyCLIP's zips)
    member: Optional[str] = None
    #: open_clip pretrained tag (``openai``) for format ``openclip-pretrained``
    pretrained_tag: Optional[str] = None
    init_from: Optional[str] = None
    sha256: Optional[str] = None
    description: str = ""
    #: open_clip model config, for architectures open_clip does not ship (plugins, tests)
    model_config: Optional[dict] = None
    #: plugins only: ``build(device=...)`` returns a ready DenseEncoder (format ``custom``)
    build: Optional[Callable[..., Any]] = None
