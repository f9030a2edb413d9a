"""Batched neural face landmarks: BlazeFace detection + FaceMesh (468 points), ported to torch."""
