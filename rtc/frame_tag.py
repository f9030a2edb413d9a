"""A frame id drawn as a barcode in the top-left corner, to match frames end to end.

RTP timestamps and pts cannot be matched across aiortc hops (random RTP origin, receiver
rebasing), so a synthetic peer writes a counter into its driver frame; a session opened with
`measure: true` copies the decoded id into the avatar frame. Blocks are large (8x8 px, black
or white) so they survive VP8/H264 compression at the default sizes.
"""

from __future__ import annotations

import numpy as np

BITS = 20  # 16 id bits + 4 check bits
BLOCK = 8
WIDTH = BITS * BLOCK
ID_MODULO = 1 << 16


def _bits_for(frame_id: int) -> list[int]:
    value = frame_id % ID_MODULO
    data = [(value >> i) & 1 for i in range(16)]
    # Check bits: parity of each nibble, so a misread corner is rejected rather than mismatched.
    check = [sum(data[i * 4:(i + 1) * 4]) & 1 for i in range(4)]
    return data + check


def write_tag(image: np.ndarray, frame_id: int) -> None:
    """Draw frame_id into image (H, W, 3 uint8 RGB, modified in place)."""
    for i, bit in enumerate(_bits_for(frame_id)):
        image[:BLOCK, i * BLOCK:(i + 1) * BLOCK] = 255 if bit else 0


def read_tag(image: np.ndarray) -> int | None:
    """Decode the id written by write_tag, or None when the corner holds no valid tag."""
    if image.shape[0] < BLOCK or image.shape[1] < WIDTH:
        return None
    strip = image[:BLOCK, :WIDTH].astype(np.float32)
    if strip.ndim == 3:
        strip = strip.mean(axis=2)
    # Sample block centres; ignore block edges where the codec blurs.
    centres = strip[2:BLOCK - 2].reshape(BLOCK - 4, BITS, BLOCK)[:, :, 2:BLOCK - 2].mean(axis=(0, 2))
    if np.any(np.abs(centres - 127.5) < 40):  # grey: not a tag, or too damaged to trust
        return None
    bits = [int(c > 127.5) for c in centres]
    value = sum(b << i for i, b in enumerate(bits[:16]))
    return value if _bits_for(value) == bits else None
