"""The three layers of every model, in compositing-channel order."""

LAYERS = ("static", "semistatic", "dynamic")
NON_STATIC = ("semistatic", "dynamic")
