"""The resegzoo QGIS plugin: a Processing provider whose algorithm runs the resegzoo command line.

This folder is copied into a QGIS profile by ``resegzoo qgis install``. It runs inside QGIS's
Python, which is not resegzoo's environment: it never imports resegzoo (or torch); it calls the
``resegzoo`` executable recorded at install time (see :mod:`.settings`). Only the QGIS modules
(provider, algorithm) import ``qgis``; :mod:`.runner` is plain Python, so resegzoo's own tests
exercise it without QGIS.
"""


def classFactory(iface):  # noqa: N802 (the name QGIS looks for)
    from .plugin import ResegzooPlugin

    return ResegzooPlugin(iface)
