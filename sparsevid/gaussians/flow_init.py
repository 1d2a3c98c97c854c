"""PROBE (session 29, reverted): initial points triangulated from the optical flow between neighbouring inputs.

Pixels whose DIS flow is forward-backward consistent are triangulated (DLT) with the two known cameras and kept
where the point is in front of both, reprojects within ``max_reproj`` px per 1000 px, and the rays meet at
``min_angle_deg`` or more.
"""
from __future__ import annotations

import numpy as np

from sparsevid.imaging import fb_error, gray_u8, long_side, make_dis


def triangulate(xa, xb, Ka, c2wa, Kb, c2wb):
    Pa = np.asarray(Ka, np.float64) @ np.linalg.inv(np.asarray(c2wa, np.float64))[:3]
    Pb = np.asarray(Kb, np.float64) @ np.linalg.inv(np.asarray(c2wb, np.float64))[:3]
    A = np.stack([xa[:, :1] * Pa[2] - Pa[0], xa[:, 1:] * Pa[2] - Pa[1],
                  xb[:, :1] * Pb[2] - Pb[0], xb[:, 1:] * Pb[2] - Pb[1]], axis=1)
    X = np.linalg.svd(A)[2][:, -1]
    return X[:, :3] / np.where(np.abs(X[:, 3:]) < 1e-12, 1e-12, X[:, 3:])


def project(X, K, c2w):
    w2c = np.linalg.inv(np.asarray(c2w, np.float64))
    Xc = X @ w2c[:3, :3].T + w2c[:3, 3]
    uv = Xc @ np.asarray(K, np.float64).T
    return uv[:, :2] / np.where(np.abs(uv[:, 2:]) < 1e-12, 1e-12, uv[:, 2:]), Xc[:, 2]


def pair_points(img_a, img_b, Ka, c2wa, Kb, c2wb, mask_a=None, stride=2, fb_tolerance=1.0, max_reproj=0.5,
                min_angle_deg=1.0):
    ga, gb = gray_u8(img_a), gray_u8(img_b)
    h, w = ga.shape
    px = 1000.0 / long_side(h, w)
    dis = make_dis("medium", long_side(h, w), None, 400)
    fab, fba = dis.calc(ga, gb, None), dis.calc(gb, ga, None)
    keep = np.zeros((h, w), bool)
    keep[stride // 2::stride, stride // 2::stride] = True
    keep &= fb_error(fab, fba) < fb_tolerance / px
    if mask_a is not None:
        keep &= np.asarray(mask_a).reshape(h, w) > 0.5
    ys, xs = np.nonzero(keep)
    xa = np.stack([xs, ys], -1).astype(np.float64) + 0.5
    xb = xa + fab[ys, xs].astype(np.float64)
    X = triangulate(xa, xb, Ka, c2wa, Kb, c2wb)
    ua, za = project(X, Ka, c2wa)
    ub, zb = project(X, Kb, c2wb)
    reproj = np.maximum(np.linalg.norm(ua - xa, axis=1), np.linalg.norm(ub - xb, axis=1))
    ra, rb = X - np.asarray(c2wa)[:3, 3], X - np.asarray(c2wb)[:3, 3]
    cos = np.sum(ra * rb, 1) / np.maximum(np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1), 1e-12)
    ok = (za > 0) & (zb > 0) & (reproj < max_reproj / px) & (np.degrees(np.arccos(np.clip(cos, -1, 1))) >= min_angle_deg)
    ok &= np.all(np.isfinite(X), axis=1)
    img = np.asarray(img_a)
    img = (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8) if img.dtype != np.uint8 else img
    return X[ok], img[ys[ok], xs[ok]]


def flow_points(views, n, rng, **kw):
    pts, cols = [], []
    for a, b in zip(views, views[1:]):
        for p, q in ((a, b), (b, a)):
            X, c = pair_points(p.image, q.image, p.K, p.c2w, q.K, q.c2w, p.mask, **kw)
            pts.append(X)
            cols.append(c)
    per = max(n // max(len(pts), 1), 1)
    out_p, out_c = [], []
    for X, c in zip(pts, cols):
        pick = np.sort(rng.choice(len(X), size=per, replace=False)) if len(X) > per else np.arange(len(X))
        out_p.append(X[pick])
        out_c.append(c[pick])
    return np.concatenate(out_p), np.concatenate(out_c)
