"""Spatial ops on NCHW tensors: convolution (groups, dilations, every pad type), transposed
convolution, pooling, upsampling."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import UnsupportedOpError, op


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return total // 2, total - total // 2


def pads_for(x_shape, kernel, strides, dilations, pad_type, pad) -> list[tuple[int, int]]:
    spatial = x_shape[2:]
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type in ("same", "same_lower"):
        pads = [_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations)]
        return [(b, a) for a, b in pads] if pad_type == "same_lower" else pads
    if pad_type == "custom":
        p = [int(v) for v in pad]
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(spatial))]
    raise UnsupportedOpError(f"pad_type {pad_type!r}")


def windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) strided view of a padded NCHW tensor."""
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw), writeable=False)


def _pair(values, default):
    return list(default) if values is None else [int(v) for v in values]


@op()
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    if x.ndim != 4:
        raise UnsupportedOpError(f"conv on a {x.ndim}-d input (only 2-d convolution is implemented)")
    kernel = weight.shape[2:]
    strides, dilations = _pair(strides, (1, 1)), _pair(dilations, (1, 1))
    x = np.pad(x, [(0, 0), (0, 0), *pads_for(x.shape, kernel, strides, dilations, pad_type, pad)])
    groups = int(groups)
    cout, cin_g = weight.shape[:2]
    outs = []
    for g in range(groups):
        win = windows(np.ascontiguousarray(x[:, g * cin_g:(g + 1) * cin_g]), kernel, strides, dilations)
        w = weight[g * (cout // groups):(g + 1) * (cout // groups)]
        outs.append(np.einsum("nchwij,ocij->nohw", win, w, optimize=True))
    out = np.concatenate(outs, axis=1)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


@op()
def conv_transpose(x, weight, bias=None, pad=None, output_shape=None, pad_type="valid", strides=None,
                   dilations=None, groups=1):
    """Weight (C_in, C_out / groups, KH, KW): every input pixel scatters its kernel into the
    output at stride steps; `pad` (or `pad_type=same`) then crops the full result."""
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    if x.ndim != 4:
        raise UnsupportedOpError(f"conv_transpose on a {x.ndim}-d input (only 2-d is implemented)")
    n, cin, h, w = x.shape
    groups = int(groups)
    _, cout_g, kh, kw = weight.shape
    sh, sw = _pair(strides, (1, 1))
    dh, dw = _pair(dilations, (1, 1))
    full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1
    out = np.zeros((n, cout_g * groups, full_h, full_w), np.float32)
    cin_g = cin // groups
    for g in range(groups):
        xs = x[:, g * cin_g:(g + 1) * cin_g]
        wg = weight[g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", xs, wg[:, :, i, j])
                out[:, g * cout_g:(g + 1) * cout_g, i * dh:i * dh + (h - 1) * sh + 1:sh,
                    j * dw:j * dw + (w - 1) * sw + 1:sw] += contrib
    if output_shape is not None:
        target = [int(v) for v in output_shape][-2:]
    elif pad_type == "same":
        target = [h * sh, w * sw]
    else:
        target = None
    if pad_type == "custom" and pad is not None:
        p = [int(v) for v in pad]
        out = out[:, :, p[0]:full_h - p[1], p[2]:full_w - p[3]]
    elif target is not None:
        top, left = (full_h - target[0]) // 2, (full_w - target[1]) // 2
        out = out[:, :, top:top + target[0], left:left + target[1]]
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out


def _pool(x, kernel_sizes, strides, pad_type, pad, reduce, pad_value, ceil_mode=False):
    x = np.asarray(x, np.float32)
    kernel, strides = [int(v) for v in kernel_sizes], [int(v) for v in strides]
    pads = pads_for(x.shape, kernel, strides, [1, 1], pad_type, pad)
    if bool(ceil_mode):  # extra cells on the far side so that a last partial window is kept
        pads = [(b, a + (-(size + b + a - k) % s)) for (b, a), size, k, s in zip(pads, x.shape[2:], kernel, strides)]
    x = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=pad_value)
    return reduce(windows(np.ascontiguousarray(x), kernel, strides, [1, 1]))


@op()
def max_pool(x, kernel_sizes, strides, pad_type, pad=None, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, lambda w: w.max(axis=(4, 5)), -np.inf, ceil_mode)


@op()
def avg_pool(x, kernel_sizes, strides, pad_type, pad=None, exclude_padding_from_average=False, ceil_mode=False):
    if not bool(exclude_padding_from_average):
        return _pool(x, kernel_sizes, strides, pad_type, pad, lambda w: w.mean(axis=(4, 5)), 0.0, ceil_mode)
    total = _pool(x, kernel_sizes, strides, pad_type, pad, lambda w: w.sum(axis=(4, 5)), 0.0, ceil_mode)
    count = _pool(np.ones_like(np.asarray(x, np.float32)[:1, :1]), kernel_sizes, strides, pad_type, pad,
                  lambda w: w.sum(axis=(4, 5)), 0.0, ceil_mode)
    return total / count


@op()
def l2_pool(x, kernel_sizes, strides, pad_type, pad=None, ceil_mode=False):
    return np.sqrt(_pool(np.square(x), kernel_sizes, strides, pad_type, pad, lambda w: w.sum(axis=(4, 5)), 0.0,
                         ceil_mode))


@op()
def upsample_nearest_neighbor(x, scale_factor_height=1, scale_factor_width=1):
    sh, sw = float(scale_factor_height), float(scale_factor_width)
    if not (sh.is_integer() and sw.is_integer()):
        raise UnsupportedOpError("upsample_nearest_neighbor with a fractional scale")
    return np.repeat(np.repeat(np.asarray(x), int(sh), axis=2), int(sw), axis=3)


@op()
def upsample_bilinear(x, scale_factor_height=1, scale_factor_width=1, align_corners=False, half_pixel_centers=None):
    x = np.asarray(x, np.float32)
    n, c, h, w = x.shape
    oh, ow = int(round(h * float(scale_factor_height))), int(round(w * float(scale_factor_width)))
    half = (not bool(align_corners)) if half_pixel_centers is None else bool(half_pixel_centers)

    def coords(out_size, in_size):
        i = np.arange(out_size, dtype=np.float64)
        if bool(align_corners) and out_size > 1:
            src = i * (in_size - 1) / (out_size - 1)
        elif half:
            src = (i + 0.5) * in_size / out_size - 0.5
        else:
            src = i * in_size / out_size
        src = np.clip(src, 0, in_size - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, in_size - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(oh, h)
    x0, x1, fx = coords(ow, w)
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bottom = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]
