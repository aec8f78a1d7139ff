"""Activations, elementwise on any shape."""

from __future__ import annotations

import math

import numpy as np

from compress.coreml.ops import op

_erf = np.vectorize(math.erf, otypes=[np.float64])


@op()
def relu(x):
    return np.maximum(x, 0)


@op()
def relu6(x):
    return np.clip(x, 0, 6)


@op()
def leaky_relu(x, alpha=0.01):
    return np.where(x >= 0, x, float(alpha) * x)


@op()
def elu(x, alpha=1.0):
    return np.where(x > 0, x, float(alpha) * (np.exp(np.minimum(x, 0)) - 1))


@op()
def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float32)))


@op()
def sigmoid_hard(x, alpha=0.2, beta=0.5):
    return np.clip(float(alpha) * np.asarray(x, np.float32) + float(beta), 0, 1)


@op()
def tanh(x):
    return np.tanh(x)


@op()
def silu(x):
    x = np.asarray(x, np.float32)
    return x / (1 + np.exp(-x))


@op()
def erf(x):
    return _erf(np.asarray(x, np.float64)).astype(np.float32)


@op()
def gelu(x, mode="EXACT"):
    x = np.asarray(x, np.float32)
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


@op()
def softplus(x):
    return np.logaddexp(0, np.asarray(x, np.float32))


@op()
def clip(x, alpha, beta):
    return np.clip(x, float(alpha), float(beta))


@op()
def prelu(x, alpha):
    alpha = np.asarray(alpha, np.float32).reshape([1, -1] + [1] * (np.ndim(x) - 2))
    return np.where(x >= 0, x, alpha * x)
