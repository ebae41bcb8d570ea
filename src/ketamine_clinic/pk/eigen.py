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
from scipy.linalg import lapack

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Below this many matrices LAPACK's per-matrix call is cheaper than the vectorised path's
# fixed cost of a few hundred array operations.
VECTORISED_MIN_BATCH = 48
_JACOBI_MAX_SWEEPS = 30
_EPS = float(np.finfo(float).eps)
# How far the scaled left eigenvectors times V may be from the identity (entry by entry)
# for them to serve as V's inverse; a numerical tolerance, not a clinical one. Distinct
# eigenvalues give the identity to a few ulp times the eigenvector condition number, which
# the caller bounds; past this the ordinary inverse is taken (a slower path, never a wrong one).
_DUAL_TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class Eigen:
    """``lam`` (N, m) eigenvalues, ``V`` unit-norm eigenvectors in columns, ``real`` (N,)
    where both are real (always true of the vectorised path), ``Vinv`` V's inverse when the
    method gives it (the vectorised path: left eigenvectors), else None.

    ``soa`` False: V and Vinv are (N, m, m); True: they are (m, m, N), every element a
    contiguous vector over the patients (the vectorised path's own layout)."""

    lam: FloatArray
    V: FloatArray
    real: BoolArray
    Vinv: FloatArray | None = None
    soa: bool = False


def eigen_decomposition(A: FloatArray, *, vectorised: bool | None = None) -> Eigen:
    """Eigenvalues and eigenvectors of every matrix in ``A`` (N, m, m).

    ``vectorised`` None chooses by batch size (one matrix: :func:`_one_matrix`; LAPACK for
    fewer than ``VECTORISED_MIN_BATCH`` matrices); True forces the vectorised path, False
    numpy's LAPACK path (tests compare them).
    """
    n = A.shape[0]
    if vectorised is None:
        if n == 1:
            return _one_matrix(A)
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


def _one_matrix(A: FloatArray) -> Eigen:
    """One matrix (1, m, m) by one LAPACK call (dgeev) that gives the eigenvalues with the
    right and the left eigenvectors; the left ones, scaled so that w_i v_i = 1, are V's
    inverse. numpy's eig and inv make two calls, each through its own wrapper: for a
    patient's first decomposition, made right after other work (the caches hold that work),
    this step took 0.19 ms that way against 0.10 ms by dgeev (4 x 4, Domino with ke0).
    Complex eigenvalues, a LAPACK failure or a left eigenvector orthogonal to its right one
    (a defective matrix) go to :func:`_lapack` and the caller's checks, as any batch does.

    The scaled left eigenvectors are V's inverse only where the eigenvalues are distinct: for
    a repeated eigenvalue LAPACK picks a left and a right basis of its eigenspace that need
    not be dual to each other. So the product with V is checked against the identity (one
    m x m product), and a matrix whose product is off goes to :func:`_lapack` as well."""
    wr, wi, vl, vr, info = lapack.dgeev(A[0])
    if info != 0 or bool(wi.any()):
        return _lapack(A)
    dots = np.einsum("ij,ij->j", vl, vr)
    if not bool(np.all(np.isfinite(dots) & (dots != 0.0))):
        return _lapack(A)
    Vinv = (vl / dots).T
    identity_error = Vinv @ vr
    identity_error[np.diag_indices_from(identity_error)] -= 1.0
    if not float(np.abs(identity_error).max()) <= _DUAL_TOLERANCE:
        return _lapack(A)
    return Eigen(wr[None], vr[None], np.ones(1, dtype=bool), Vinv[None])


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


# The vectorised path works on "structure of arrays": a batch of n x n matrices is an
# (n, n, N) array, so every element is a contiguous vector over the N patients and each
# operation below is one pass over such vectors.

def _jacobi(S: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues (n, N) and orthonormal eigenvectors (n, n, N; columns) of symmetric
    matrices S (n, n, N), by cyclic Jacobi rotations applied to all N at once.

    Each rotation touches only what it changes (the classical update, [Rutishauser1971]):
    a_pp -= t a_pq, a_qq += t a_pq, a_pq = 0, and for r not p, q
    a_rp -= s (a_rq + tau a_rp), a_rq += s (a_rp - tau a_rq), with tau = s / (1 + c).
    """
    n = S.shape[0]
    a = {(i, j): S[i, j].copy() for i in range(n) for j in range(i, n)}  # upper triangle

    def key(i: int, j: int) -> tuple[int, int]:
        return (i, j) if i <= j else (j, i)

    U = [[np.ones(S.shape[2]) if i == j else np.zeros(S.shape[2]) for j in range(n)]
         for i in range(n)]  # U[i][j]: row i of column j
    scale = np.abs(S).max(axis=(0, 1))
    pairs = [(p, q) for p in range(n - 1) for q in range(p + 1, n)]
    with np.errstate(divide="ignore", invalid="ignore"):
        for sweep in range(_JACOBI_MAX_SWEEPS):
            # Convergence is quadratic: two sweeps reach rounding for the matrices here,
            # so the check starts after them.
            if sweep >= 2 and all(np.all(np.abs(a[pq]) <= _EPS * scale) for pq in pairs):
                break
            for p, q in pairs:
                apq = a[p, q]
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                t = np.sign(theta) / (np.abs(theta) + np.sqrt(theta * theta + 1.0))
                # |theta| beyond 1e150 squares to inf: t -> 1 / (2 theta) there; and no
                # rotation where the element is already zero.
                t = np.where(np.abs(theta) > 1e150, 0.5 / theta, t)
                t = np.where(apq == 0.0, 0.0, t)
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                tau = s / (1.0 + c)
                tapq = t * apq
                a[p, p] = a[p, p] - tapq
                a[q, q] = a[q, q] + tapq
                a[p, q] = np.zeros_like(apq)
                for r in range(n):
                    if r != p and r != q:
                        rp, rq = a[key(r, p)], a[key(r, q)]
                        a[key(r, p)] = rp - s * (rq + tau * rp)
                        a[key(r, q)] = rq + s * (rp - tau * rq)
                for r in range(n):
                    up, uq = U[r][p], U[r][q]
                    U[r][p] = up - s * (uq + tau * up)
                    U[r][q] = uq + s * (up - tau * uq)
    return np.array([a[i, i] for i in range(n)]), np.array(U)


def _block_eigen(B: FloatArray, nonzero: BoolArray, block: tuple[int, ...]
                 ) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Eigenvalues (n, N), right eigenvectors X (n, n, N; columns) and their inverse Y
    (rows: left eigenvectors) of one diagonal block B (n, n, N), and where they are real."""
    n, _, n_mat = B.shape
    if n == 1:
        one = np.ones((1, 1, n_mat))
        return B[0].copy(), one, one, np.ones(n_mat, dtype=bool)
    edges = _tree_edges(block, nonzero)
    if edges is not None and all(np.all(B[p, q] * B[q, p] > 0) for p, q in edges):
        d = np.ones((n, n_mat))
        S = np.zeros_like(B)
        for p, q in edges:
            d[q] = d[p] * np.sqrt(B[q, p] / B[p, q])
            S[p, q] = S[q, p] = np.sign(B[p, q]) * np.sqrt(B[p, q] * B[q, p])
        for i in range(n):
            S[i, i] = B[i, i]
        lam, U = _jacobi(S)
        # B = D S D^-1, so B (D U) = (D U) diag(lam) and (D U)^-1 = U^T D^-1.
        return lam, d[:, None, :] * U, np.swapaxes(U, 0, 1) / d[None, :, :], \
            np.ones(n_mat, dtype=bool)
    eig = _lapack(np.ascontiguousarray(np.moveaxis(B, 2, 0)))
    with np.errstate(all="ignore"):
        Y = np.full_like(eig.V, np.nan)
        invertible = eig.real & (np.abs(np.linalg.det(eig.V)) > 1e-300)
        Y[invertible] = np.linalg.inv(eig.V[invertible])
    return (np.ascontiguousarray(eig.lam.T), np.ascontiguousarray(np.moveaxis(eig.V, 0, 2)),
            np.ascontiguousarray(np.moveaxis(Y, 0, 2)), eig.real)


def _structured(A_batch: FloatArray) -> Eigen:
    n_mat, m, _ = A_batch.shape
    nonzero = np.any(A_batch != 0.0, axis=0)
    blocks = _blocks(np.ascontiguousarray(nonzero).tobytes(), m)
    A = np.ascontiguousarray(np.moveaxis(A_batch, 0, 2))  # (m, m, N)
    parts = []
    real = np.ones(n_mat, dtype=bool)
    column = 0
    for block in blocks:
        lam_b, X, Y, ok = _block_eigen(A[np.ix_(block, block)], nonzero, block)
        parts.append((list(block), slice(column, column + len(block)), lam_b, X, Y))
        column += len(block)
        real &= ok
    lam = np.concatenate([p[2] for p in parts])  # (m, N), eigenvalues in block order
    V = np.zeros((m, m, n_mat))  # right eigenvectors, columns
    W = np.zeros((m, m, n_mat))  # left eigenvectors, rows
    with np.errstate(all="ignore"):
        for k, (rows_k, cols, lam_k, X_k, Y_k) in enumerate(parts):
            # Right eigenvectors of group k's eigenvalues: X_k on the group, zero on the
            # groups before it, and on each later group l the solution of
            # (lam I - A_ll) v_l = sum of A_lj v_j over the groups j already filled, with
            # (lam I - A_ll)^-1 = X_l diag(1 / (lam - lam_l)) Y_l.
            V[np.ix_(rows_k, range(cols.start, cols.stop))] = X_k
            filled = list(rows_k)
            for rows_l, _, lam_l, X_l, Y_l in parts[k + 1:]:
                rhs = np.einsum("ijp,jcp->icp", A[np.ix_(rows_l, filled)], V[filled, cols])
                coef = np.einsum("ijp,jcp->icp", Y_l, rhs) / (lam_k[None] - lam_l[:, None])
                V[rows_l, cols] = np.einsum("ijp,jcp->icp", X_l, coef)
                filled += rows_l
            # Left eigenvectors: Y_k on the group, zero after it, and on each earlier group
            # l (latest first) w_l = (sum of w_j A_jl) X_l diag(1 / (lam - lam_l)) Y_l.
            W[np.ix_(range(cols.start, cols.stop), rows_k)] = Y_k
            filled = list(rows_k)
            for rows_l, _, lam_l, X_l, Y_l in reversed(parts[:k]):
                rhs = np.einsum("cjp,jip->cip", W[cols, filled], A[np.ix_(filled, rows_l)])
                coef = np.einsum("cjp,jip->cip", rhs, X_l) / (lam_k[:, None] - lam_l[None])
                W[cols, rows_l] = np.einsum("cjp,jip->cip", coef, Y_l)
                filled += rows_l
        V /= np.sqrt(np.square(V).sum(axis=0, keepdims=True))  # unit columns
        W /= np.einsum("cjp,jcp->cp", W, V)[:, None, :]  # W V = I
    return Eigen(np.ascontiguousarray(lam.T), V, real, W, soa=True)
