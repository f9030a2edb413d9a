"""WebRTC helpers shared by the server and the synthetic callers of the load tester."""
