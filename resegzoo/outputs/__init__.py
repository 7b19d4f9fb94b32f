"""Everything written to disk: atomic writes, output-name claims, images and sidecars, colours, legend
fonts, GIS products."""
