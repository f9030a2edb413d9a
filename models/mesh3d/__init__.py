"""The 3-D face-mesh reenactment path: head pose, expression transfer, and the triangle renderer."""
