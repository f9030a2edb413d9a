"""Landmark disentanglement (MarioNETte §3.3): landmarks = mean + identity + expression.

The expression part is what moves from the driver to the target; the identity part (face shape) stays
the target's own. Two variants behind the landmark-transformer interface:

- `pca`: the driver's expression relative to their calibrated neutral face is projected onto an
  expression basis (PCA of how faces move around their own mean, fitted on training landmarks), which
  keeps expression and drops what is not expression (tracking noise, identity leaking through the
  calibration).
- `regressor`: a small learned regressor predicts the expression coefficients from the driver's
  landmarks alone (no neutral face needed), trained on the same landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.transformer import LandmarkTransformer, TransformerConfig, canonical, expression_delta

HIDDEN = 128


@dataclass
class ExpressionModel:
    components: np.ndarray  # (k, 136) orthonormal expression basis (rows)
    explained: np.ndarray  # (k,) fraction of expression variance per component
    regressor: list[np.ndarray] | None = None  # MLP weights: W1, b1, W2, b2, W3, b3

    def project(self, delta: np.ndarray) -> np.ndarray:
        """(68, 2) expression delta -> the same, kept to the basis."""
        coefficients = self.components @ delta.reshape(-1)
        return (self.components.T @ coefficients).reshape(68, 2)

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """Regressor: (68, 2) landmarks -> (68, 2) expression delta."""
        if self.regressor is None:
            raise ValueError("this expression model has no regressor: fit it with regressor=True")
        w1, b1, w2, b2, w3, b3 = self.regressor
        hidden = np.maximum(canonical(landmarks).reshape(-1) @ w1 + b1, 0)
        hidden = np.maximum(hidden @ w2 + b2, 0)
        return (self.components.T @ (hidden @ w3 + b3)).reshape(68, 2)

    def save(self, path: Path) -> None:
        arrays = {"components": self.components, "explained": self.explained}
        for index, weight in enumerate(self.regressor or []):
            arrays[f"regressor_{index}"] = weight
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> ExpressionModel:
        with np.load(path) as data:
            regressor = [data[f"regressor_{i}"] for i in range(6)] if "regressor_0" in data else None
            return cls(data["components"], data["explained"], regressor)


def _training_pairs(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: canonical landmarks, and the expression delta from that sequence's (identity's) mean."""
    inputs, deltas = [], []
    for frames in sequences:
        mean_face = np.mean([canonical(f) for f in frames], axis=0)
        for frame in frames:
            shape = canonical(frame)
            inputs.append(shape.reshape(-1))
            deltas.append(expression_delta(shape, mean_face).reshape(-1))
    return np.asarray(inputs, np.float32), np.asarray(deltas, np.float32)


def fit_expression_model(sequences: list[np.ndarray], components: int = 12, regressor: bool = False,
                         steps: int = 2000, seed: int = 0) -> ExpressionModel:
    """Fit on landmark sequences, one (T, 68, 2) array per identity (video)."""
    inputs, deltas = _training_pairs(sequences)
    _, singular, vt = np.linalg.svd(deltas - deltas.mean(axis=0), full_matrices=False)
    variance = singular**2
    model = ExpressionModel(vt[:components].astype(np.float32), (variance / variance.sum())[:components])
    if regressor:
        model.regressor = _fit_regressor(inputs, deltas @ model.components.T, steps, seed)
    return model


def _fit_regressor(inputs: np.ndarray, coefficients: np.ndarray, steps: int, seed: int) -> list[np.ndarray]:
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(inputs.shape[1], HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, coefficients.shape[1]))
    x, y = torch.from_numpy(inputs), torch.from_numpy(coefficients)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(net(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    return [a for layer in layers for a in (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())]


class PCALandmarkTransformer(LandmarkTransformer):
    def __init__(self, config: TransformerConfig, model: ExpressionModel) -> None:
        super().__init__(config)
        self.model = model

    def expression(self, driver_in_neutral_pose: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        return self.model.project(expression_delta(driver_in_neutral_pose, neutral))


class RegressorLandmarkTransformer(LandmarkTransformer):
    def __init__(self, config: TransformerConfig, model: ExpressionModel) -> None:
        super().__init__(config)
        self.model = model

    def expression(self, driver_in_neutral_pose: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        # The neutral face is not needed: the regressor tells expression from identity by itself.
        return self.model.predict(driver_in_neutral_pose)
