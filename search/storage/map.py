"""The map of a library: every paper placed in 2-D, grouped into labelled clusters.

Why these pieces (figures in docs/benchmarks.md, "The map, the servers and the page", from
bench/map.py):
- Layout: t-SNE (openTSNE, cosine) on each paper's vector (the mean of its chunks). Of UMAP,
  PaCMAP and openTSNE it kept neighbourhoods best on 10k papers (sklearn's trustworthiness, 10
  neighbours), and it needs no JIT compiler: UMAP and PaCMAP compile their code with numba,
  which UMAP does again in every fresh process, so every rebuild of even a 50-paper library
  paid ~12 CPU seconds for its map. A library too small for a neighbour graph gets PCA.
- Clusters: k-means on the vectors themselves (not on the 2-D layout, which distorts distances),
  k growing with the square root of the library. Every paper gets a cluster: HDBSCAN leaves
  many papers as noise on spread-out notes, which a map cannot colour.
- Labels: class-based TF-IDF (c-TF-IDF, as in BERTopic): the words frequent in one cluster's
  text and rare across clusters.
- Stored in the generation's index.sqlite (tables map_points and map_info, store.MAP_SCHEMA),
  written by the rebuild before the manifest marks the file complete. A later rebuild that
  changed few papers places the new ones and keeps everything else still; when more than
  REFIT_FRACTION changed, the map is fitted again, and a rebuild that changed no paper's text
  fits nothing. An edit's generation is a copy of the previous one (build.py), map rows
  included: `patch_rows` drops the rows of changed papers, places them and sums up again the
  clusters they joined or left, instead of writing the whole map again (at 100k papers a
  map.json was 25 MB to read and to write: docs/benchmarks.md, "Rebuild"). On an
  openTSNE map new papers are placed as openTSNE's own `transform` places them
  (`place_tsne`: the median of their nearest mapped papers, then t-SNE's optimisation against
  the still map), with openTSNE's code but not its fitted model, which could only be kept by
  pickling it (nothing in the index is loaded with pickle): map_info keeps the scale and
  offset that take the map back to t-SNE's units. Trustworthiness of 150 placed papers among
  3,000 real ones: 0.970, against 0.944 for the median start alone, 0.971 for `transform`
  and 0.977 for a refit (bench/map.py placed). PCA maps, and maps written before the scale
  was kept, place by `place` alone.

The heavy pieces (openTSNE, scikit-learn) are imported inside the functions that fit or place
(`place_tsne`: 1.0 s of imports in a fresh rebuild), so that queries and `--help` never pay
for them; a rebuild of a library with an openTSNE map starts that import in a background
thread (`warm_up`) as soon as it knows a note changed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.errors import IndexMissing, PapersError
from search.storage import store, vectors

MAP_NAME = "map.json"
MAP_VERSION = 1
# The layout method (chosen by bench/map.py: see the module docstring).
LAYOUT = "opentsne"
# Below this many papers a neighbour-graph layout is noise: PCA instead.
MIN_LAYOUT = 30
UMAP_NEIGHBOURS = 15
# From this many papers a layout takes long enough to say so, and a cheaper start pays.
LARGE = 2000
# More than this share of papers new, changed or removed since the map was fitted: refit.
REFIT_FRACTION = 0.1
# A new paper is placed at the median of this many nearest mapped papers (openTSNE's own
# `transform` starts there, with k=25).
PLACE_NEIGHBOURS = 25
# openTSNE's `TSNEEmbedding.transform` defaults, which `place_tsne` runs after `place`: the
# perplexity of a new paper's affinities, then no early-exaggeration steps and 250 steps at
# exaggeration 1.5, a small learning rate and clipped gradients (so new papers do not shoot
# off the map).
TRANSFORM_PERPLEXITY = 5.0
TRANSFORM_EARLY_EXAGGERATION = 4.0
TRANSFORM_ITER = 250
TRANSFORM_EXAGGERATION = 1.5
TRANSFORM_LEARNING_RATE = 0.1
TRANSFORM_MOMENTUM = 0.8
TRANSFORM_MAX_GRAD_NORM = 0.25
# The repulsion: Barnes-Hut, as `transform` picks for fewer than 10k new papers (its
# interpolation grid, "fft", placed worse: 0.949 against 0.970, bench/map.py placed); "bh"
# here is openTSNE's Barnes-Hut with the map's tree built once, not at each of 250 steps.
TRANSFORM_GRADIENT = "bh"
LABEL_TERMS = 3
TOP_PAPERS = 5
SEED = 42

Log = Callable[[str], None]

_TOKEN = re.compile(r"(?u)\b[^\W\d_][\w-]{2,}\b")


@dataclass
class Point:
    """One paper on the map."""

    id: str
    title: str
    section: list[str]
    x: float
    y: float
    cluster: int
    hash: str = ""


@dataclass
class Cluster:
    """A group of papers and the words that set it apart."""

    id: int
    label: str
    terms: list[str]
    size: int
    x: float
    y: float
    top: list[str] = field(default_factory=list)  # paper ids, most central first


@dataclass
class LibraryMap:
    """Every paper's position and cluster, and each cluster's label."""

    method: str
    points: list[Point]
    clusters: list[Cluster]
    fitted_papers: int = 0
    placed_since_fit: int = 0
    seconds: float = 0.0
    # map units -> the layout's own units: raw = xy * scale + offset (`_scaled` undone), so
    # that papers added to an openTSNE map are optimised in t-SNE's units (`place_tsne`);
    # 0: unknown (a map written before this was stored), which places by `place` alone
    scale: float = 0.0
    offset: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MAP_VERSION,
            "method": self.method,
            "fitted_papers": self.fitted_papers,
            "placed_since_fit": self.placed_since_fit,
            "seconds": self.seconds,
            "scale": self.scale,
            "offset": self.offset,
            "clusters": [asdict(c) for c in self.clusters],
            # vars(), not asdict(): asdict deep-copies, 3.4 s for 100k points
            "points": [vars(p) for p in self.points],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LibraryMap:
        if data.get("version") != MAP_VERSION:
            raise ValueError("map version")
        return cls(
            method=data["method"],
            points=[Point(**p) for p in data["points"]],
            clusters=[Cluster(**c) for c in data["clusters"]],
            fitted_papers=int(data.get("fitted_papers", 0)),
            placed_since_fit=int(data.get("placed_since_fit", 0)),
            seconds=float(data.get("seconds", 0.0)),
            scale=float(data.get("scale", 0.0)),
            offset=[float(v) for v in data.get("offset", [0.0, 0.0])],
        )


# -- layout ----------------------------------------------------------------------------------
def fit_layout(x: np.ndarray, method: str = LAYOUT, seed: int = SEED) -> np.ndarray:
    """2-D coordinates of the rows of `x` (unit vectors), scaled to about [-1, 1]."""
    return fit_layout_scaled(x, method, seed)[0]


def fit_layout_scaled(
    x: np.ndarray, method: str = LAYOUT, seed: int = SEED
) -> tuple[np.ndarray, float, list[float]]:
    """`fit_layout`, with the scale and offset that take its coordinates back to the layout's
    own units (raw = xy * scale + offset)."""
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32), 0.0, [0.0, 0.0]
    if n < 3:
        return _scaled_with(np.array([[float(i), 0.0] for i in range(n)]))
    if method == "pca" or n < MIN_LAYOUT:
        # the top two eigenvectors of the d x d covariance: an SVD of the n x d matrix costs
        # 10-100x more here (64 s against 0.4 s for 10k papers on the shared machine)
        centred = x - x.mean(axis=0)
        _, vecs = np.linalg.eigh(centred.T @ centred)
        return _scaled_with(centred @ vecs[:, ::-1][:, :2])
    if method not in LAYOUTS:
        raise ValueError(f"unknown layout method {method!r}")
    with warnings.catch_warnings():
        # umap says on import that TensorFlow (for ParametricUMAP, unused) is absent, and
        # while fitting small libraries that the neighbour graph is not fully connected
        # (the layout is still right): neither is for the user.
        warnings.simplefilter("ignore", ImportWarning)
        warnings.simplefilter("ignore", UserWarning)
        model = layout_model(method, n, seed)
        if method == "opentsne":
            return _scaled_with(np.asarray(model.fit(x)))
        return _scaled_with(model.fit_transform(x))


LAYOUTS = ("umap", "pacmap", "opentsne")


def layout_model(method: str, n: int, seed: int = SEED) -> Any:
    """An unfitted estimator of `method` with the map's settings for `n` papers (bench/map.py
    fits the same ones, and calls their own `transform` to compare with `place`)."""
    if method == "umap":
        import umap  # lazy: pulls in numba and pynndescent (seconds to import)

        big = n > LARGE
        return umap.UMAP(
            n_neighbors=min(UMAP_NEIGHBOURS, n - 1),
            min_dist=0.1,
            metric="cosine",
            random_state=seed,
            n_jobs=1,
            # a large library: PCA start and 200 epochs (UMAP's own choice above 10k)
            # instead of a spectral start and 500 epochs; 10k papers in 32 s, not minutes
            init="pca" if big else "spectral",
            n_epochs=200 if big else None,
        )
    if method == "pacmap":
        import pacmap  # lazy: numba

        return pacmap.PaCMAP(n_components=2, random_state=seed)
    if method == "opentsne":
        from openTSNE import TSNE  # lazy: scikit-learn and scipy (no JIT compiler)

        # One thread below LARGE: on a small library a second thread only spins (100 papers:
        # 11.9 CPU seconds with two threads, 1.1 with one), and a busy machine makes it slow.
        threads = 1 if n <= LARGE else max(1, os.cpu_count() or 1)
        # t-SNE needs 3 x perplexity neighbours per paper: a small library gets a smaller one
        # (openTSNE would lower it too, but says so on stderr in every rebuild)
        perplexity = min(30.0, (n - 1) / 3 - 1)
        return TSNE(metric="cosine", perplexity=perplexity, random_state=seed, n_jobs=threads)
    raise ValueError(f"unknown layout method {method!r}")


def _scaled(xy: np.ndarray) -> np.ndarray:
    return _scaled_with(xy)[0]


def _scaled_with(xy: np.ndarray) -> tuple[np.ndarray, float, list[float]]:
    """`xy` centred and divided by its largest coordinate; and that divisor and centre."""
    xy = np.asarray(xy, dtype=np.float64)
    mean = xy.mean(axis=0)
    xy = xy - mean
    span = float(np.abs(xy).max()) or 1.0
    return (xy / span).astype(np.float32), span, [float(v) for v in mean]


def place(
    new: np.ndarray, mapped: np.ndarray, mapped_xy: np.ndarray, k: int = PLACE_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `new` rows among already-mapped ones, which stay where they are: the median
    position of their k nearest mapped papers (cosine), the start openTSNE's own `transform`
    takes. Returns (xy, index of each one's nearest mapped paper).

    The median rather than a similarity-weighted mean: a paper whose neighbours sit in two
    clusters lands in one of them, not in the gap between (trustworthiness of placed papers
    0.917 -> 0.944 on real vectors, bench/map.py placed). On an openTSNE map `place_tsne`
    then optimises from here (0.970)."""
    if len(new) == 0 or len(mapped) == 0:
        return np.zeros((len(new), 2), dtype=np.float32), np.zeros(len(new), dtype=np.int64)
    k = min(k, len(mapped))
    sims = new @ mapped.T
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    best = np.argmax(np.take_along_axis(sims, nearest, axis=1), axis=1)
    first = nearest[np.arange(len(new)), best].astype(np.int64)
    return np.median(mapped_xy[nearest], axis=1).astype(np.float32), first


def place_tsne(
    new: np.ndarray,
    mapped: np.ndarray,
    mapped_xy: np.ndarray,
    scale: float,
    offset: list[float],
    perplexity: float = TRANSFORM_PERPLEXITY,
    gradient: str | Callable[..., Any] = TRANSFORM_GRADIENT,
) -> tuple[np.ndarray, np.ndarray]:
    """`place`, then the rest of openTSNE's `TSNEEmbedding.transform`, with openTSNE's own
    code but without its fitted model (kept only by pickling it): each new paper's affinities
    to its 3 x perplexity nearest mapped papers (exact, cosine distance, as the map's metric),
    then t-SNE's gradient descent for the new papers alone against the mapped papers, which
    stay still, in the layout's own units (`scale`, `offset`: map_info) with `transform`'s
    two phases and settings. Returns (xy in map units, index of each one's nearest mapped
    paper), as `place` does."""
    start_xy, first = place(new, mapped, mapped_xy)
    n = len(mapped)
    if len(new) == 0 or n < 2 or scale <= 0:
        return start_xy, first
    # lazy: openTSNE pulls in scikit-learn and scipy; only a rebuild that places papers pays
    import scipy.sparse
    from openTSNE import PartialTSNEEmbedding, TSNEEmbedding
    from openTSNE.affinity import Affinities, joint_probabilities_nn

    k = min(n, int(3 * perplexity))
    perplexity = min(perplexity, k / 3)  # as openTSNE lowers it when there are few papers
    neighbors = np.zeros((len(new), k), dtype=np.int64)
    near_d = np.zeros((len(new), k), dtype=np.float64)
    for row in range(0, len(new), 1024):  # rows of new x mapped distances at a time, not all
        distances = 1.0 - new[row : row + 1024] @ mapped.T
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(distances, nearest, axis=1), axis=1)
        sorted_nearest = np.take_along_axis(nearest, order, axis=1)
        neighbors[row : row + 1024] = sorted_nearest
        near_d[row : row + 1024] = np.take_along_axis(distances, sorted_nearest, axis=1)
    near_d = np.maximum(near_d, 0.0)
    p = joint_probabilities_nn(
        neighbors,
        near_d,
        [perplexity],
        symmetrize=False,
        normalization="point-wise",
        n_reference_samples=n,
        n_jobs=1,
    )
    origin = np.asarray(offset, dtype=np.float64)
    raw = mapped_xy.astype(np.float64) * scale + origin
    centre = (raw.max(axis=0) + raw.min(axis=0)) / 2  # `transform` centres the reference
    affinities = Affinities()
    affinities.P = scipy.sparse.csr_matrix((n, n))  # the fit's own; unused when placing
    method: Any = _bh_against_still_map() if gradient == "bh" else gradient
    reference = TSNEEmbedding(
        raw - centre, affinities, random_state=SEED, n_jobs=1, negative_gradient_method=method
    )
    moving = PartialTSNEEmbedding(
        start_xy.astype(np.float64) * scale + origin - centre,
        reference,
        p,
        **reference.gradient_descent_params,
    )
    phases = [(0, TRANSFORM_EARLY_EXAGGERATION), (TRANSFORM_ITER, TRANSFORM_EXAGGERATION)]
    for n_iter, exaggeration in phases:
        moving.optimize(
            n_iter=n_iter,
            learning_rate=TRANSFORM_LEARNING_RATE,
            exaggeration=exaggeration,
            momentum=TRANSFORM_MOMENTUM,
            inplace=True,
            max_grad_norm=TRANSFORM_MAX_GRAD_NORM,
            max_step_norm=None,
        )
    xy = (np.asarray(moving) + centre - origin) / scale
    return xy.astype(np.float32), first


def _bh_against_still_map() -> Callable[..., tuple[float, np.ndarray]]:
    """openTSNE's `kl_divergence_bh` for new points against a still reference, with the
    reference's quad tree built once: openTSNE builds it at every step (for one paper in a
    10k map that is most of the time), though a still map makes the same tree each time."""
    from openTSNE import _tsne  # lazy: see place_tsne
    from openTSNE.quad_tree import QuadTree

    trees: dict[int, Any] = {}

    def gradient(
        embedding: np.ndarray,
        P: Any,  # noqa: N803 - openTSNE's keyword
        dof: float,
        bh_params: dict[str, Any],
        reference_embedding: np.ndarray,
        should_eval_error: bool = False,
        n_jobs: int = 1,
        **_: Any,
    ) -> tuple[float, np.ndarray]:
        key = id(reference_embedding)
        if key not in trees:
            trees[key] = QuadTree(reference_embedding)
        out = np.zeros_like(embedding, dtype=np.float64, order="C")
        sum_q = _tsne.estimate_negative_gradient_bh(
            trees[key],
            embedding,
            out,
            **bh_params,
            dof=dof,
            num_threads=n_jobs,
            pairwise_normalization=False,
        )
        sum_p, kl = _tsne.estimate_positive_gradient_nn(
            P.indices,
            P.indptr,
            P.data,
            embedding,
            reference_embedding,
            out,
            dof,
            num_threads=n_jobs,
            should_eval_error=should_eval_error,
        )
        if should_eval_error:
            kl += sum_p * np.log(sum_q + 1e-16)  # openTSNE's EPSILON
        return kl, out

    return gradient


# -- clusters and labels ---------------------------------------------------------------------
def cluster_count(n: int) -> int:
    """k for k-means: about sqrt(n / 2), at least 2 (when there are 4 papers), at most 40."""
    if n < 4:
        return 1
    return max(2, min(40, round(math.sqrt(n / 2))))


def fit_clusters(x: np.ndarray, seed: int = SEED) -> np.ndarray:
    """A cluster number per row of `x`, numbered by size (0 the largest)."""
    k = cluster_count(len(x))
    if k <= 1:
        return np.zeros(len(x), dtype=np.int64)
    from sklearn.cluster import KMeans  # lazy: scikit-learn is only needed when fitting

    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    rename = np.empty(k, dtype=np.int64)
    rename[order] = np.arange(k)
    return rename[labels]


STOP_WORDS = frozenset(
    """a about above after again against all also among an and any are as at be because been
    before being below between both but by can could did do does doing down during each either
    et al few for from further had has have having here how however i if in into is it its
    itself just more most much must no nor not of off on once only or other our out over own
    paper papers propose proposed proposes same should show shows so some such than that the
    their them then there these they this those through to too under until up use used uses
    using very via was we were what when where which while who why will with within without
    would yet you your new based approach method methods results work also one two three
    first second novel show shown demonstrate state art arxiv abs http https www com org pdf
    html github note notes md""".split()
)


def words(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if w not in STOP_WORDS]


def label_clusters(
    texts: list[str], labels: np.ndarray, n_terms: int = LABEL_TERMS
) -> list[list[str]]:
    """The most distinctive words of each cluster by c-TF-IDF: a word's frequency in the
    cluster's text times log(1 + mean words per cluster / the word's frequency overall)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    counts: list[dict[str, int]] = [{} for _ in range(k)]
    for text, c in zip(texts, labels, strict=True):
        bag = counts[int(c)]
        for w in words(text):
            bag[w] = bag.get(w, 0) + 1
    total: dict[str, int] = {}
    for bag in counts:
        for w, n in bag.items():
            total[w] = total.get(w, 0) + n
    mean_words = sum(total.values()) / max(k, 1)
    out = []
    for bag in counts:
        size = sum(bag.values()) or 1
        scored = sorted(
            ((n / size) * math.log(1 + mean_words / total[w]), w) for w, n in bag.items() if n > 1
        )
        out.append([w for _, w in reversed(scored[-n_terms:])] or ["(misc)"])
    return out


def summarise_clusters(
    points: list[Point],
    x: np.ndarray,
    texts: list[str],
    labels: np.ndarray,
    known: dict[int, list[str]] | None = None,
) -> list[Cluster]:
    """Label, size, centre on the map and most central papers of each cluster.

    `known`: labels kept from the fitted map (placing a few papers does not relabel: c-TF-IDF
    over every paper's text is most of what a placement would cost)."""
    if known is None:
        terms = dict(enumerate(label_clusters(texts, labels)))
    else:
        terms = known
    xy = np.array([[p.x, p.y] for p in points], dtype=np.float64).reshape(-1, 2)
    out = []
    for c, words_c in sorted(terms.items()):
        members = np.flatnonzero(labels == c)
        if len(members):
            top = _most_central(x[members], TOP_PAPERS)
            out.append(_cluster(c, words_c, xy[members], [points[members[i]].id for i in top]))
    return out


def _most_central(x: np.ndarray, k: int) -> np.ndarray:
    """Positions in `x` (a cluster's paper vectors) of its k papers nearest its mean."""
    return np.argsort(-(x @ x.mean(axis=0)), kind="stable")[:k]


def _cluster(c: int, terms: list[str], xy: np.ndarray, top: list[str]) -> Cluster:
    """A cluster of papers at `xy`, labelled `terms`, its most central papers `top` (ids)."""
    mx, my = np.median(xy, axis=0)
    return Cluster(
        id=c,
        label=", ".join(terms),
        terms=terms,
        size=len(xy),
        x=round(float(mx), 4),
        y=round(float(my), 4),
        top=top,
    )


# -- the whole map ---------------------------------------------------------------------------
@dataclass
class MapInput:
    """What the map is made from: one row per paper."""

    ids: list[str]
    titles: list[str]
    sections: list[list[str]]
    texts: list[str]
    hashes: list[str]
    vectors: np.ndarray


def compute(
    data: MapInput,
    previous: LibraryMap | None = None,
    method: str = LAYOUT,
    log: Log = lambda s: None,
) -> LibraryMap:
    """The map of `data`; reuses `previous` (placing only new papers) when few changed."""
    start = time.perf_counter()
    n = len(data.ids)
    x = data.vectors
    old = {p.id: p for p in previous.points} if previous else {}
    kept = [
        i
        for i, (pid, h) in enumerate(zip(data.ids, data.hashes, strict=True))
        if pid in old and old[pid].hash == h
    ]
    removed = len(set(old) - set(data.ids))
    changed = n - len(kept) + removed
    if previous is None or must_refit(previous, n, len(kept), changed, method):
        if n >= LARGE and method != "pca":  # tens of seconds: say what is going on
            log(f"map: laying out {n} papers")
        xy, scale, offset = fit_layout_scaled(x, method)
        labels = fit_clusters(x)
        fitted, placed, used = n, 0, _layout_for(n, method)
        known = None
    else:
        kept_set = set(kept)
        new = [i for i in range(n) if i not in kept_set]
        xy = np.zeros((n, 2), dtype=np.float32)
        labels = np.zeros(n, dtype=np.int64)
        for i in kept:
            p = old[data.ids[i]]
            xy[i] = (p.x, p.y)
            labels[i] = p.cluster
        placed_xy, nearest = place_on(previous, x[new], x[kept], xy[kept])
        for j, i in enumerate(new):
            xy[i] = placed_xy[j]
            labels[i] = labels[kept[int(nearest[j])]]
        scale, offset, used = previous.scale, previous.offset, previous.method
        fitted, placed = previous.fitted_papers, previous.placed_since_fit + changed
        known = {c.id: c.terms for c in previous.clusters}
    points = [
        Point(
            id=data.ids[i],
            title=data.titles[i],
            section=data.sections[i],
            x=round(float(xy[i, 0]), 4),
            y=round(float(xy[i, 1]), 4),
            cluster=int(labels[i]),
            hash=data.hashes[i],
        )
        for i in range(n)
    ]
    return LibraryMap(
        method=used,
        points=points,
        clusters=summarise_clusters(points, x, data.texts, labels, known),
        fitted_papers=fitted,
        placed_since_fit=placed,
        seconds=round(time.perf_counter() - start, 3),
        scale=scale,
        offset=offset,
    )


def _layout_for(n: int, method: str) -> str:
    """The layout a map of n papers is fitted with: PCA below MIN_LAYOUT."""
    return "pca" if n < MIN_LAYOUT or method == "pca" else method


def must_refit(previous: LibraryMap, n: int, kept: int, changed: int, method: str) -> bool:
    """Fit the map again rather than place papers into `previous`: nothing of it is kept, more
    than REFIT_FRACTION of the papers it was fitted with changed since, or it was laid out by
    another method (grown past PCA, or a release that changed LAYOUT)."""
    return (
        not kept
        or previous.placed_since_fit + changed > REFIT_FRACTION * max(previous.fitted_papers, 1)
        or (previous.method != _layout_for(n, method) and n >= MIN_LAYOUT)
    )


def place_on(
    previous: LibraryMap, new: np.ndarray, mapped: np.ndarray, mapped_xy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Place `new` rows among the `mapped` papers of the map `previous` as its layout does:
    `place_tsne` on an openTSNE map, `place` on others."""
    if previous.method == "opentsne":
        return place_tsne(new, mapped, mapped_xy, previous.scale, previous.offset)
    return place(new, mapped, mapped_xy)


# -- reading an index generation -------------------------------------------------------------
def paper_vectors(index: Any, chunk_pid: dict[int, int], pids: Sequence[int]) -> np.ndarray:
    """One unit vector per paper in `pids` (rows in that order): the mean of its chunks'
    vectors; `chunk_pid` maps each vector id to its paper.

    Vectorised, and in as few passes over the vectors as it can: each batch's vectors of
    papers with one chunk (most of a library of abstracts) are copied to their row, those of
    papers with several are summed by one sort and reduceat at the end, and only rows that are
    not already unit vectors are divided. A per-vector Python loop was 1.3 s of a 100k-paper
    edit's map step, per-batch sums and a normalising pass over every row 0.8 s."""
    out = np.zeros((len(pids), int(index.d)), dtype=np.float32)
    if not chunk_pid or not len(pids):
        return out
    chunk_vids = np.fromiter(chunk_pid.keys(), dtype=np.int64, count=len(chunk_pid))
    chunk_pids = np.fromiter(chunk_pid.values(), dtype=np.int64, count=len(chunk_pid))
    by_vid = np.argsort(chunk_vids)
    chunk_vids, chunk_pids = chunk_vids[by_vid], chunk_pids[by_vid]
    wanted = np.asarray(pids, dtype=np.int64)
    by_pid = np.argsort(wanted)
    sorted_pids = wanted[by_pid]
    # each chunk's row in `out` (-1: a paper not wanted), and how many chunks each row has
    where = np.minimum(np.searchsorted(sorted_pids, chunk_pids), len(sorted_pids) - 1)
    chunk_row = np.where(sorted_pids[where] == chunk_pids, by_pid[where], -1)
    counts = np.bincount(chunk_row[chunk_row >= 0], minlength=len(pids))
    several_rows, several_vecs = [], []
    for vecs, ids in vectors.iter_vectors(index):
        at = np.minimum(np.searchsorted(chunk_vids, ids), len(chunk_vids) - 1)
        rows = np.where(chunk_vids[at] == ids, chunk_row[at], -1)
        single = rows >= 0
        single[single] = counts[rows[single]] == 1
        if single.all():
            out[rows] = vecs
        else:
            out[rows[single]] = vecs[single]
            several = (rows >= 0) & ~single
            if several.any():
                several_rows.append(rows[several])
                several_vecs.append(np.asarray(vecs[several], dtype=np.float32))
    if several_rows:
        rows, batch = np.concatenate(several_rows), np.concatenate(several_vecs)
        order = np.argsort(rows, kind="stable")
        rows, batch = rows[order], batch[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(batch, starts, axis=0)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    off = np.flatnonzero((np.abs(norms - 1.0) > 1e-6) & (norms > 0))
    if len(off):
        out[off] /= norms[off, None]
    return out


def map_input(idx: store.Index) -> MapInput:
    """Everything the map needs from one generation: one query for the papers (not
    `all_papers`, which also reads sources and aliases the map does not show)."""
    rows = idx.query(
        "SELECT pid, id, title, section, notes, abstract, text_hash FROM papers ORDER BY pid"
    )
    sections = [json.loads(r[3] or "[]") for r in rows]
    notes = [json.loads(r[4] or "[]") for r in rows]
    return MapInput(
        ids=[r[1] for r in rows],
        titles=[r[2] for r in rows],
        sections=sections,
        texts=[" ".join([r[2], r[2], *n, r[5] or ""]) for r, n in zip(rows, notes, strict=True)],
        hashes=[str(r[6] or "") for r in rows],
        vectors=paper_vectors(idx.vectors, idx.chunk_papers(), [r[0] for r in rows]),
    )


def read(gen: Path) -> LibraryMap | None:
    """The map stored in a generation, or None when it has none (or an unreadable one)."""
    try:
        idx = store.Index.open_generation(gen, verify=False)
    except PapersError:
        return None
    try:
        return read_index(idx)
    finally:
        idx.close()


def read_index(idx: store.Index) -> LibraryMap | None:
    """The map in an open generation: its tables, or the map.json that a generation made
    before the map was kept in them has in its folder."""
    try:
        info = idx.map_info()
        if info is None:
            legacy = idx.gen / MAP_NAME
            return LibraryMap.from_json(json.loads(legacy.read_text(encoding="utf-8")))
        found = LibraryMap.from_json({**info, "points": []})
        found.points = [
            Point(
                id=paper_id,
                title=title,
                section=json.loads(section or "[]"),
                x=x,
                y=y,
                cluster=c,
                hash=h,
            )
            for paper_id, title, section, x, y, c, h in idx.map_points()
        ]
        return found
    except (OSError, ValueError, KeyError, TypeError, sqlite3.DatabaseError, PapersError):
        return None


def _info(library_map: LibraryMap) -> dict[str, Any]:
    """What map_info keeps: the map without its points (those are rows)."""
    info = library_map.to_json()
    del info["points"]
    return info


@dataclass
class MapRows:
    """What a rebuild writes of its map: every row anew (`replace`), or the rows of papers
    `gone` dropped and `rows` (pid, x, y, cluster, hash) added; and the map's info."""

    replace: bool
    gone: list[int]
    rows: list[tuple[int, float, float, int, str]]
    info: dict[str, Any]


def update_generation(
    writer: store.GenerationWriter,
    gen: Path,
    index: Any,
    previous: store.Index | None,
    log: Log = lambda s: None,
) -> None:
    """The rebuild's step: the map of the generation being written in `gen` (its rows in
    `writer`, its vectors `index` still in memory), before its manifest is committed.

    A generation that is a copy of the previous one (an edit's patch) holds the previous map's
    rows: only papers with a new text are placed and only the clusters they join or leave are
    summed up again (`patch_rows`). Otherwise the map is computed from every paper, reusing
    the map of the `previous` generation (None: its vectors are not this one's) when few
    papers changed. A map that cannot be made is reported and left out: the index is still
    good without it."""
    view = writer.view(gen, index)
    try:
        stored = view.map_info()
        change = None
        if stored is not None:
            change = patch_rows(view, LibraryMap.from_json({**stored, "points": []}))
        if change is None:
            before = None
            if previous is not None and stored is None:
                before = read_index(previous)
            library_map = compute(map_input(view), before, log=log)
            pid_of = dict(view.query("SELECT id, pid FROM papers"))
            rows = [(pid_of[p.id], p.x, p.y, p.cluster, p.hash) for p in library_map.points]
            change = MapRows(True, [], rows, _info(library_map))
    except Exception as e:  # noqa: BLE001 - the layout libraries raise their own error types
        first = (str(e).strip().splitlines() or [""])[0]
        log(f"map: not made ({e.__class__.__name__}: {first})")
        writer.clear_map()
        return
    if change.replace:
        writer.replace_map(change.rows, change.info)
    elif change.gone or change.rows:
        writer.patch_map(change.gone, change.rows, change.info)


def patch_rows(view: store.Index, stored: LibraryMap) -> MapRows | None:
    """What brings the map rows a patched generation copied from the previous one up to date:
    the rows of papers gone or changed dropped, the papers without a row placed, and the
    clusters that gained or lost papers summed up again. The same map `compute` makes from
    every paper, at the cost of the changed papers (and of reading every paper's vector and
    position, which placing needs). None when the map must be fitted again."""
    start = time.perf_counter()
    rows = view.map_rows()
    unplaced = view.map_unplaced()
    stale = [(pid, c) for pid, _x, _y, c, current in rows if not current]
    rows = [r for r in rows if r[4]]
    kept, new_pids = len(rows), [pid for pid, _h in unplaced]
    # a paper with another text is unplaced and stale: counted once, as compute does
    changed = len(unplaced) + len(stale) - len({pid for pid, _c in stale} & set(new_pids))
    if must_refit(stored, kept + len(unplaced), kept, changed, LAYOUT):
        return None
    if not changed:
        return MapRows(False, [], [], _info(stored))
    kept_pids = [r[0] for r in rows]
    x = paper_vectors(view.vectors, view.chunk_papers(), kept_pids + new_pids)
    # positions as stored (4 decimals) for the summaries; float32, as compute has them, to place
    kept_xy = np.array([(r[1], r[2]) for r in rows], dtype=np.float64).reshape(-1, 2)
    kept_cluster = np.array([r[3] for r in rows], dtype=np.int64)
    new_xy, nearest = place_on(stored, x[kept:], x[:kept], kept_xy.astype(np.float32))
    new_xy = np.round(new_xy.astype(np.float64), 4)
    new_cluster = kept_cluster[nearest]
    xy = np.concatenate([kept_xy, new_xy])
    labels = np.concatenate([kept_cluster, new_cluster])
    pids = np.asarray(kept_pids + new_pids, dtype=np.int64)
    clusters = {c.id: c for c in stored.clusters}
    for c in {c for _pid, c in stale} | {int(c) for c in new_cluster}:
        if c not in clusters:
            continue
        members = np.flatnonzero(labels == c)
        if not len(members):
            del clusters[c]
            continue
        top = [int(pids[members[i]]) for i in _most_central(x[members], TOP_PAPERS)]
        ids = dict(view.pid_ids(top))
        clusters[c] = _cluster(c, clusters[c].terms, xy[members], [ids[p] for p in top])
    stored.clusters = [clusters[c] for c in sorted(clusters)]
    stored.placed_since_fit += changed
    stored.seconds = round(time.perf_counter() - start, 3)
    return MapRows(
        False,
        [pid for pid, _c in stale],
        [
            (pid, float(new_xy[j, 0]), float(new_xy[j, 1]), int(new_cluster[j]), h)
            for j, (pid, h) in enumerate(unplaced)
        ],
        _info(stored),
    )


def warm_up(previous: store.Index | None) -> None:
    """Start importing openTSNE in a background thread when the previous generation's map was
    laid out with it: this rebuild's map will place papers with it (or fit again), and its
    import (about 1 s: scikit-learn, scipy.stats and pandas come with it) then runs while the
    rebuild copies and checks files, which release the GIL, instead of after them. A failed
    import is left for the map step to report."""
    if previous is None or "openTSNE" in sys.modules:
        return
    try:
        info = previous.map_info()
    except PapersError:
        return
    if info and info.get("method") == "opentsne":
        threading.Thread(target=_import_quietly, args=("openTSNE",), name="map-import").start()


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001, S110 - the map step imports it again and says why
        pass


def load(index_dir: Path, log: Log = lambda s: None) -> LibraryMap:
    """The live generation's map; computed in memory (not stored) for an index built before
    maps existed. Raises IndexMissing when there is no index."""
    gen = store.current_generation(index_dir)
    if gen is None:
        raise IndexMissing("no index yet: run `papers rebuild` first")
    idx = store.Index.open_generation(gen)
    try:
        found = read_index(idx)
        if found is not None:
            return found
        log("this index has no map yet (it is made by `papers rebuild`): computing it now")
        return compute(map_input(idx), None, log=log)
    except ImportError as e:
        raise PapersError(f"the map needs {e.name}: pip install 'papers[web]'") from None
    finally:
        idx.close()
