"""Batched eigen-decomposition of many small compartment matrices at once.

``numpy.linalg.eig`` on a stack of matrices calls LAPACK once per matrix: about 10 us for a
4 x 4 matrix, so a second for 100,000 virtual patients, more than the rest of the solution.
Compartment matrices have a structure that allows a vectorised decomposition instead:

* Drug flows one way between groups of compartments (parent -> effect site -> transit chain
  -> metabolite), so after a permutation the matrix is block lower-triangular; its
  eigenvalues are those of the diagonal blocks (the strongly connected groups).
* Inside a group exchange is two-way along a tree (central with its peripherals), so the
  block is similar to a symmetric matrix through a diagonal scaling
  (``D^-1 B D`` with ``d_j / d_i = sqrt(B_ji / B_ij)``; for a mammillary model D is the
  square root of the volumes). Symmetric blocks are diagonalised by cyclic Jacobi rotations,
  applied to every patient at once (a few array operations per rotation); Jacobi is also the
  most accurate method for small symmetric matrices.
* The eigenvectors of the whole matrix follow block by block by forward substitution.

A group that is not a tree (none of the published models has one) is decomposed by LAPACK.
Repeated eigenvalues across groups (a transit chain of equal rates) make the matrix
defective or nearly so: such patients come out with an ill-conditioned or non-finite
eigenvector matrix, which the caller detects and solves another way.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Below this many matrices LAPACK's per-matrix call is cheaper than the vectorised path's
# fixed cost of a few hundred array operations.
VECTORISED_MIN_BATCH = 48
_JACOBI_MAX_SWEEPS = 30
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True, slots=True)
class Eigen:
    """``lam`` (N, m) eigenvalues, ``V`` (N, m, m) unit-norm eigenvectors in columns, ``real``
    (N,) where both are real (always true of the vectorised path)."""

    lam: FloatArray
    V: FloatArray
    real: BoolArray


def eigen_decomposition(A: FloatArray, *, vectorised: bool | None = None) -> Eigen:
    """Eigenvalues and eigenvectors of every matrix in ``A`` (N, m, m).

    ``vectorised`` None chooses by batch size (LAPACK for fewer than
    ``VECTORISED_MIN_BATCH`` matrices); True or False forces a path (tests compare them).
    """
    n = A.shape[0]
    if vectorised is None:
        vectorised = n >= VECTORISED_MIN_BATCH
    if not vectorised:
        return _lapack(A)
    return _structured(A)


def _lapack(A: FloatArray) -> Eigen:
    lam_c, V_c = np.linalg.eig(A)
    if not np.iscomplexobj(lam_c):  # numpy returns real arrays when every value is real
        return Eigen(lam_c, V_c, np.ones(A.shape[0], dtype=bool))
    real = np.all(np.abs(lam_c.imag) <= 1e-12 * np.abs(lam_c.real), axis=1)
    return Eigen(np.ascontiguousarray(lam_c.real), np.ascontiguousarray(V_c.real), real)


@cache
def _blocks(pattern: bytes, m: int) -> tuple[tuple[int, ...], ...]:
    """The strongly connected groups of the flow graph (edge j -> i where A[i, j] != 0), in
    an order that makes the matrix block lower-triangular (every group after its sources)."""
    nonzero = np.frombuffer(pattern, dtype=np.bool_).reshape(m, m)
    index = [-1] * m
    low = [0] * m
    on_stack = [False] * m
    stack: list[int] = []
    groups: list[tuple[int, ...]] = []
    counter = 0

    def connect(v: int) -> None:  # Tarjan's algorithm (m is at most a few dozen)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack[v] = True
        for w in range(m):
            if w != v and nonzero[w, v]:
                if index[w] < 0:
                    connect(w)
                    low[v] = min(low[v], low[w])
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack[w] = False
                group.append(w)
                if w == v:
                    break
            groups.append(tuple(sorted(group)))

    for v in range(m):
        if index[v] < 0:
            connect(v)
    group_of = {v: g for g, members in enumerate(groups) for v in members}
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for g, members in enumerate(groups):
        sorter.add(g, *{group_of[j] for i in members for j in range(m)
                        if nonzero[i, j] and group_of[j] != g})
    return tuple(groups[g] for g in sorter.static_order())


def _tree_edges(block: tuple[int, ...], nonzero: BoolArray) -> list[tuple[int, int]] | None:
    """Parent -> child pairs (positions in ``block``) of a spanning tree of a two-way
    exchange graph, or None if the exchange is not two-way along a tree."""
    size = len(block)
    pairs = [(p, q) for p in range(size) for q in range(p + 1, size)
             if nonzero[block[p], block[q]] or nonzero[block[q], block[p]]]
    if len(pairs) != size - 1:
        return None
    if any(not (nonzero[block[p], block[q]] and nonzero[block[q], block[p]]) for p, q in pairs):
        return None
    neighbours: dict[int, list[int]] = {p: [] for p in range(size)}
    for p, q in pairs:
        neighbours[p].append(q)
        neighbours[q].append(p)
    edges: list[tuple[int, int]] = []
    seen = {0}
    queue = [0]
    while queue:
        p = queue.pop()
        for q in neighbours[p]:
            if q not in seen:
                seen.add(q)
                edges.append((p, q))
                queue.append(q)
    return edges if len(seen) == size else None


def _jacobi(S: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues (N, n) and orthonormal eigenvectors (N, n, n) of symmetric S (N, n, n),
    by cyclic Jacobi rotations applied to all N matrices at once (S is overwritten)."""
    n = S.shape[1]
    U = np.zeros_like(S)
    U[:, np.arange(n), np.arange(n)] = 1.0
    scale = np.abs(S).max(axis=(1, 2))
    off = ~np.eye(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_JACOBI_MAX_SWEEPS):
            if np.all(np.abs(S[:, off]).max(axis=1) <= _EPS * scale):
                break
            for p in range(n - 1):
                for q in range(p + 1, n):
                    apq = S[:, p, q]
                    theta = (S[:, q, q] - S[:, p, p]) / (2.0 * apq)
                    t = np.sign(theta) / (np.abs(theta) + np.sqrt(theta * theta + 1.0))
                    # |theta| beyond 1e150 squares to inf: t -> 1 / (2 theta) there; and no
                    # rotation where the element is already zero.
                    t = np.where(np.abs(theta) > 1e150, 0.5 / theta, t)
                    t = np.where(apq == 0.0, 0.0, t)
                    c = 1.0 / np.sqrt(t * t + 1.0)
                    s = t * c
                    for M in (S, U):  # columns: M <- M J
                        mp, mq = M[:, :, p].copy(), M[:, :, q]
                        M[:, :, p] = c[:, None] * mp - s[:, None] * mq
                        M[:, :, q] = s[:, None] * mp + c[:, None] * mq
                    sp, sq = S[:, p, :].copy(), S[:, q, :]  # rows: S <- J^T S
                    S[:, p, :] = c[:, None] * sp - s[:, None] * sq
                    S[:, q, :] = s[:, None] * sp + c[:, None] * sq
                    S[:, p, q] = S[:, q, p] = 0.0  # what the rotation annihilates
    return np.ascontiguousarray(S[:, np.arange(n), np.arange(n)]), U


def _block_eigen(B: FloatArray, nonzero: BoolArray, block: tuple[int, ...]
                 ) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Eigenvalues (N, n), right eigenvectors X (N, n, n) and their inverse Y = X^-1 of one
    diagonal block B (N, n, n), and where they are real."""
    n_mat, n, _ = B.shape
    if n == 1:
        one = np.ones((n_mat, 1, 1))
        return B[:, :, 0].copy(), one, one, np.ones(n_mat, dtype=bool)
    edges = _tree_edges(block, nonzero)
    if edges is not None and np.all(B[:, [p for p, q in edges], [q for p, q in edges]] *
                                    B[:, [q for p, q in edges], [p for p, q in edges]] > 0):
        d = np.ones((n_mat, n))
        S = np.zeros_like(B)
        for p, q in edges:
            d[:, q] = d[:, p] * np.sqrt(B[:, q, p] / B[:, p, q])
            S[:, p, q] = S[:, q, p] = np.sign(B[:, p, q]) * np.sqrt(B[:, p, q] * B[:, q, p])
        S[:, np.arange(n), np.arange(n)] = B[:, np.arange(n), np.arange(n)]
        lam, U = _jacobi(S)
        # B = D S D^-1, so B (D U) = (D U) diag(lam) and (D U)^-1 = U^T D^-1.
        return lam, d[:, :, None] * U, np.swapaxes(U, 1, 2) / d[:, None, :], \
            np.ones(n_mat, dtype=bool)
    eig = _lapack(B)
    with np.errstate(all="ignore"):
        Y = np.full_like(eig.V, np.nan)
        invertible = eig.real & (np.abs(np.linalg.det(eig.V)) > 1e-300)
        Y[invertible] = np.linalg.inv(eig.V[invertible])
    return eig.lam, eig.V, Y, eig.real


def _structured(A: FloatArray) -> Eigen:
    n_mat, m, _ = A.shape
    nonzero = np.any(A != 0.0, axis=0)
    blocks = _blocks(np.ascontiguousarray(nonzero).tobytes(), m)
    parts = []
    real = np.ones(n_mat, dtype=bool)
    for block in blocks:
        sub = A[:, block][:, :, block]
        lam_b, X, Y, ok = _block_eigen(sub, nonzero, block)
        parts.append((block, lam_b, X, Y))
        real &= ok
    lam = np.empty((n_mat, m))
    V = np.zeros((n_mat, m, m))
    column = 0
    with np.errstate(all="ignore"):
        for k, (block, lam_k, X_k, _) in enumerate(parts):
            cols = slice(column, column + len(block))
            column += len(block)
            lam[:, cols] = lam_k
            # Eigenvectors of eigenvalues of group k: X_k on the group, zero on the groups
            # before it, and for each later group l the solution of
            # (lam I - A_ll) v_l = sum of A_lj v_j over the groups j already filled.
            V[:, list(block), cols] = X_k
            filled = list(block)
            for later, lam_l, X_l, Y_l in parts[k + 1:]:
                rhs = np.einsum("pij,pjc->pic", A[:, later][:, :, filled],
                                V[:, filled, cols])
                coef = np.einsum("pij,pjc->pic", Y_l, rhs) / (
                    lam_k[:, None, :] - lam_l[:, :, None])
                V[:, list(later), cols] = np.einsum("pij,pjc->pic", X_l, coef)
                filled += list(later)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    return Eigen(lam, V, real)

