#!/usr/bin/env python3
"""Winograd F(m x m, r x r) in a float32 model: each tile size's rounding error and its work per
output, for choosing tiles before writing kernels (docs/performance.md, "F(6x6,3x3)").

The transforms are built from their interpolation points by the Cook-Toom construction that the
kernels' hand-written ones follow (Lavin & Gray 2016; the fractions in G): for finite points p_i
and the point at infinity,
  A^T[k][i] = p_i^k,            A^T[k][inf] = 1 if k == m - 1
  G[i][j]   = p_i^j / f_i,      G[inf]      = e_(r-1),       f_i = prod_(l != i) (p_i - p_l)
  B^T[i]    = the coefficients of prod_(l != i) (x - p_l),  B^T[inf] = those of prod_l (x - p_l)
and checked against direct correlation in float64 first. The model rounds where the kernels
do: the filters' transform U = G g G^T and the patches' V = B^T d B to float32, each point's
products U_t (O x C) V_t (C x tiles) summed in float32 (numpy's float32 matrix product), the
output transform in float32. The error is max |y - y64| / max |y64| over the layer's outputs,
y64 the direct convolution in float64, beside im2col's (the same dot products in float32).
It is a model: the kernels' order of additions differs, so compare tiles by its ratios, and the
kernels' own errors by bench/winograd.mjs.

  /usr/bin/python3 tools/winograd_model.py [--seed N]
"""
import argparse
from fractions import Fraction as Fr

import numpy as np

POINTS = {
    # F(2,3) and F(4,3): the kernels' points (assembly/winograd.ts)
    (2, 3): [0, 1, -1],
    (4, 3): [0, 1, -1, 2, -2],
    # F(4,3) with 1/2 for 2 (Barabasz et al. 2020 chose points so): less rounding, no +-pairs
    "F(4,3) 1/2,-2": [0, 1, -1, Fr(1, 2), -2],
    # F(6,3): the usual choice (wincnn's), and one with +-3 for +-1/2 (larger entries in B^T)
    (6, 3): [0, 1, -1, 2, -2, Fr(1, 2), Fr(-1, 2)],
    "F(6,3) +-3": [0, 1, -1, 2, -2, 3, -3],
}


def poly_from_roots(roots):
    """Coefficients (lowest power first) of prod (x - r)."""
    c = [Fr(1)]
    for r in roots:
        c = [Fr(0)] + c  # x * c
        for k in range(len(c) - 1):
            c[k] -= r * c[k + 1]
    return c


def transforms(m, r, points):
    """A^T (m x n), G (n x r), B^T (n x n) as exact fractions, n = m + r - 1."""
    n = m + r - 1
    pts = [Fr(p) for p in points]
    assert len(pts) == n - 1, (m, r, points)
    AT = [[p ** k for p in pts] + [Fr(1 if k == m - 1 else 0)] for k in range(m)]
    G, BT = [], []
    for i, p in enumerate(pts):
        f = Fr(1)
        for l, q in enumerate(pts):
            if l != i:
                f *= p - q
        G.append([p ** j / f for j in range(r)])
        BT.append(poly_from_roots([q for l, q in enumerate(pts) if l != i]) + [Fr(0)])
    G.append([Fr(1 if j == r - 1 else 0) for j in range(r)])
    BT.append(poly_from_roots(pts))
    return AT, G, BT


def as_array(rows, dtype):
    return np.array([[float(v) for v in row] for row in rows], dtype=dtype)


def check_exact(m, r, AT, G, BT):
    """y = A^T [(G g) * (B^T d)] equals the correlation sum_j g_j d_(k+j) for random g, d."""
    rng = np.random.default_rng(0)
    g, d = rng.standard_normal(r), rng.standard_normal(m + r - 1)
    y = as_array(AT, np.float64) @ ((as_array(G, np.float64) @ g) * (as_array(BT, np.float64) @ d))
    ref = np.array([sum(g[j] * d[k + j] for j in range(r)) for k in range(m)])
    assert np.allclose(y, ref, rtol=1e-12, atol=1e-12), (m, r, y, ref)


def direct64(x, w, pad):
    """conv2d (correlation) of x [C, H, W] with w [O, C, r, r], stride 1, in float64."""
    C, H, W = x.shape
    O, _, r, _ = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    HO, WO = H + 2 * pad - r + 1, W + 2 * pad - r + 1
    cols = np.stack([xp[:, i:i + HO, j:j + WO] for i in range(r) for j in range(r)], axis=1)  # C, r*r, HO, WO
    return w.reshape(O, C * r * r).astype(np.float64) @ cols.reshape(C * r * r, HO * WO), (HO, WO), cols


def im2col32(w, cols):
    O = w.shape[0]
    return w.reshape(O, -1).astype(np.float32) @ cols.reshape(w[0].size, -1).astype(np.float32)


def winograd32(x, w, pad, m, AT, G, BT):
    """The float32 model of F(m, r): tiles of m x m outputs, patches of n x n inputs."""
    C, H, W = x.shape
    O, _, r, _ = w.shape
    n = m + r - 1
    HO, WO = H + 2 * pad - r + 1, W + 2 * pad - r + 1
    TH, TW = -(-HO // m), -(-WO // m)
    xp = np.zeros((C, TH * m + r - 1, TW * m + r - 1), np.float32)
    xp[:, pad:pad + H, pad:pad + W] = x
    at, g32, bt = as_array(AT, np.float32), as_array(G, np.float32), as_array(BT, np.float32)
    U = (g32 @ w.astype(np.float32) @ g32.T).astype(np.float32)  # O, C, n, n (rounded once per matmul)
    patches = np.stack([xp[:, ty * m:ty * m + n, tx * m:tx * m + n] for ty in range(TH) for tx in range(TW)], axis=1)  # C, T, n, n
    V = (bt @ patches @ bt.T).astype(np.float32)  # C, T, n, n
    M = np.empty((n, n, O, TH * TW), np.float32)
    for a in range(n):
        for b in range(n):
            M[a, b] = U[:, :, a, b] @ V[:, :, a, b]  # O x C times C x tiles, float32
    Y = (at @ M.transpose(2, 3, 0, 1) @ at.T).astype(np.float32)  # O, T, m, m
    Y = Y.reshape(O, TH, TW, m, m).transpose(0, 1, 3, 2, 4).reshape(O, TH * m, TW * m)
    return Y[:, :HO, :WO].reshape(O, HO * WO)


def work_per_output(m, r, AT, BT, H):
    """Multiplies of the products per output, and the 1-D transforms' operations per output
    (input and output side, each counted as its matrix's non-zeros, per channel), with the
    tiles' waste on an H x H map (padding r // 2)."""
    n = m + r - 1
    tiles = (-(-H // m)) ** 2
    waste = tiles * m * m / (H * H)
    products = n * n / (m * m) * waste
    nz = lambda rows: sum(1 for row in rows for v in row if v != 0)
    # B^T d B: n columns of B^T (n non-zeros rows) then n rows: 2 n nz(B^T) per patch
    inp = 2 * n * nz(BT) / (m * m) * waste
    # A^T M A: n columns then m rows of A^T: (n + m) nz(A^T) per tile
    out = (n + m) * nz(AT) / (m * m) * waste
    return products, inp, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tiles = {}
    for key, pts in POINTS.items():
        m, r = (int(key[2]), 3) if isinstance(key, str) else key
        AT, G, BT = transforms(m, r, pts)
        check_exact(m, r, AT, G, BT)
        name = key if isinstance(key, str) else f"F({m},{r})"
        tiles[name] = (m, r, AT, G, BT)
        big = max(abs(float(v)) for row in BT + G + AT for v in row)
        print(f"{name}: points {', '.join(str(p) for p in pts)}, inf; largest transform entry {big:g}")

    # layers: C = O channels, H x H map, batch 1 (ResNet-18/VGG/CIFAR shapes; the error depends
    # on C and the transforms, not on the map's size)
    layers = [(16, 32), (64, 56), (128, 28), (256, 14), (512, 7)]
    print("\nerror against float64, max |y - y64| / max |y64| (x: normal(0, 1), w: normal(0, 1 / sqrt(9 C)))")
    names = [t for t in tiles if tiles[t][1] == 3]
    print("| layer | im2col | " + " | ".join(names) + " |")
    print("|---|" + "---|" * (len(names) + 1))
    for C, H in layers:
        x = rng.standard_normal((C, H, H)).astype(np.float32)
        w = (rng.standard_normal((C, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
        y64, _, cols = direct64(x, w, 1)
        scale = np.abs(y64).max()
        errs = [np.abs(im2col32(w, cols) - y64).max() / scale]
        for t in names:
            m, r, AT, G, BT = tiles[t]
            errs.append(np.abs(winograd32(x, w, 1, m, AT, G, BT) - y64).max() / scale)
        print(f"| {C}@{H}x{H} | " + " | ".join(f"{e:.1e} ({e / errs[0]:.1f}x)" if i else f"{e:.1e}" for i, e in enumerate(errs)) + " |")

    print("\nwork per output and channel pair (products) or channel (transforms), tiles' waste included")
    sizes = [t for t in names if " " not in t]
    print("| map | " + " | ".join(f"{t} products / input / output" for t in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for H in (224, 112, 56, 32, 28, 16, 14, 8, 7):
        cells = []
        for t in sizes:
            m, r, AT, G, BT = tiles[t]
            p, i, o = work_per_output(m, r, AT, BT, H)
            cells.append(f"{p:.2f} / {i:.1f} / {o:.1f}")
        print(f"| {H}x{H} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
