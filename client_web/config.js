// Deployment settings for the demo page. Replace this file to configure a deployment (e.g. mount a
// Kubernetes ConfigMap over it, see deploy/kubernetes/marionette.yaml).
//
// iceServers: passed to RTCPeerConnection. Empty by default: on a LAN or loopback host candidates are
// enough, and an unreachable STUN server only slows the call set-up. Behind NAT, add a TURN server:
//   iceServers: [{ urls: "turn:turn.example.com:3478", username: "marionette", credential: "change-me" }]
window.MARIONETTE_CONFIG = {
  iceServers: [],
};
