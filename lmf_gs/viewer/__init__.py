"""Interactive web viewer (viser): the model rendered on the server from the browser's camera,
with a time slider, layer toggles and display modes.

`state` and `camera` are pure (numpy), `render` turns a state and a camera into an image,
`source` is the only module that reaches into the rest of lmf-gs, `server` is the viser GUI and
`browser` drives headless Chromium (tests and the README screenshot).
"""
