"""MarioNETte Live media server: WebRTC signaling, sessions, cross-session batcher, metrics."""
