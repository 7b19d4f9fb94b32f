"""resegzoo in QGIS: the Processing plugin (``plugin/``, data copied into a QGIS profile, run by
QGIS's own Python) and its installer (:mod:`resegzoo.qgis.install`, ``resegzoo qgis install``)."""
