"""Built-in evaluation datasets: the benchmarks of METHOD.md section 6, plus a generic folder dataset."""
from __future__ import annotations

from functools import partial

from resegzoo.plugins.hookspecs import hookimpl

DESCRIPTIONS = {
    "openearthmap": "OpenEarthMap: 8 land-cover classes (release or mmseg layout)",
    "loveda": "LoveDA: 7 land-cover classes, urban + rural (release or mmseg layout)",
    "isaid": "iSAID: 15 object classes + background (release colour masks or mmseg layout)",
    "potsdam": "ISPRS Potsdam: 6 classes, 6000 px RGB tiles (release colour labels or mmseg layout)",
    "vaihingen": "ISPRS Vaihingen: 6 classes, IRRG tiles (release colour labels or mmseg layout)",
    "uavid": "UAVid: 7 classes, oblique UAV frames (release colour labels or mmseg layout)",
    "udd5": "UDD5: 5 classes, nadir UAV images (release src/gt or mmseg layout)",
    "vdd": "VDD: 7 classes, nadir UAV images (release src/gt or mmseg layout)",
    "levir-cd": "LEVIR-CD: building change between two dates (A/ B/ label/; SegEarth-OV3's 512 px crops)",
    "whu-cd": "WHU-CD: building change between two dates (A/ B/ label/ 1024 px tiles; 512 px crops)",
    "s2looking": "S2Looking: building change in satellite pairs (Image1/ Image2/ label/, whole 1024 px images)",
}


@hookimpl
def resegzoo_register_datasets(register):
    from resegzoo.eval.datasets import BUILTIN_LAYOUTS, open_builtin
    from resegzoo.eval.datasets.generic import open_generic
    from resegzoo.plugins.interfaces import DatasetSpec

    for name in BUILTIN_LAYOUTS:
        register(DatasetSpec(name=name, factory=partial(open_builtin, name), description=DESCRIPTIONS[name]))
    from resegzoo.eval.datasets.change import open_generic_change

    register(DatasetSpec(name="change-generic", factory=open_generic_change,
                         description="any change folder: A/ (first date) + B/ (second) + label/ (0 unchanged, "
                                     "1 or 255 changed) with a classes.yaml naming the classes to compare"))
    register(DatasetSpec(name="generic", factory=open_generic,
                         description="any folder: images/ + labels/ (or the reference code's tile/R_G_B_IR.png + "
                                     "tile/L.png) with a classes.yaml"))
