// Deployment settings for the demo page. Replace this file to configure a deployment (e.g. mount a
// Kubernetes ConfigMap over it, see deploy/kubernetes/marionette.yaml).
//
// ICE/TURN servers: by default the page asks the server (GET /api/ice-servers) before each call, and gets
// STUN plus TURN credentials that expire (python -m server --turn-urls ... with MARIONETTE_TURN_SECRET).
// Never put a TURN password here: anyone can read this file. Setting `iceServers` here overrides the
// server's list, e.g. `iceServers: []` for host candidates only.
window.MARIONETTE_CONFIG = {};
