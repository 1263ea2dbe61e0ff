#!/usr/bin/env python3
"""A vectorised NumPy implementation of the stopscan model, for one scenario.

The yardstick of bench/numpy_reference.cpp (issue 7): the C++ engine should be at least 5x
faster per core than this. It simulates the same model as sim/engine.cpp (MODEL.md §2-§7)
with whole-array operations and NumPy's own generator (not the engine's Philox keys, so the
draws differ and only the laws agree):

- persons stopped at least once, per cell: Binomial(population, P(Y >= 1));
- each person's stops: the zero-truncated negative binomial, by inversion of per-cell CDF
  tables (one searchsorted for all persons);
- persistent records per person and database: enrolled, truth, record flag, wrong link;
- per stop and database, the lazy 1:N search: the mate passes tau when u0 >= FNMR(c), some
  impostor passes when u1 < FPIR(c); only then is the best impostor's score drawn (given
  that it passes tau) and compared with the genuine score of the same u0;
- all policies under common random numbers: every policy sees the same stops, records,
  search results and action draws; street searches in database order, then custody
  searches after an arrest;
- per-cell integer tallies with the engine's metric layout.

Search-level counts are tallied densely: each (stop, database) gets a small state code
(hit kind, mated, inaccurate, same cell, same category per dimension) and one bincount over
(cell, code) per policy and database, mapped to metrics by a 0/1 matrix. Actions only
follow a shown adverse flag or an immigration hit, so the policy logic runs on the few
stops where one is possible.

The per-cell parameters (and the closed form's expected counts) come from a JSON file
written by `bench_numpy_reference --export FILE`, so both implementations simulate the same
resolved numbers. Modes:

  time   --params FILE --replications R [--seed S]
         prints "seconds T stops N": the time of R replications after set-up
  check  --params FILE --replications R [--seed S]
         means over R replications against the closed form (`stopscan explain`); exits 1
         and says which figures disagree when any does

Only what the default scenario uses is modelled: fingerprint searches without human
review, no uncertain parameters, no stop cap (the exporter refuses other scenarios).
"""

import argparse
import json
import math
import sys
import time

try:
    import numpy as np
except ImportError:
    print("skipped: python3-numpy not installed")
    sys.exit(0)

# Hit kinds, as sim/stop_rules.hpp's Hit.
NONE, OWN, LINK, FALSE = 0, 1, 2, 3
STREET, CUSTODY, NO_ACCESS = 0, 1, 2
FULL, FLAG_ONLY, NO_DISPLAY = 0, 1, 2


# --- normal distribution, vectorised ---------------------------------------------------

# Acklam's rational approximation of the normal quantile (relative error < 1.15e-9), refined
# by nothing: far below the Monte Carlo error of any figure here.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


def normal_quantile(p):
    """Phi^-1(p) for p in (0, 1), elementwise."""
    p = np.asarray(p, dtype=float)
    out = np.empty_like(p)
    lo = p < 0.02425
    hi = p > 1 - 0.02425
    mid = ~(lo | hi)
    if mid.any():
        q = p[mid] - 0.5
        r = q * q
        num = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
        den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1
        out[mid] = num / den
    for mask, sign, tail in ((lo, 1.0, p), (hi, -1.0, 1 - p)):
        if mask.any():
            q = np.sqrt(-2 * np.log(tail[mask]))
            num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
            den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
            out[mask] = sign * num / den
    return out


def upper_tail(x):
    """Q(x) = P(Z > x), elementwise, from the Chebyshev erfc of Numerical Recipes
    (relative error < 1.2e-7 everywhere)."""
    x = np.asarray(x, dtype=float)
    z = np.abs(x) / math.sqrt(2)
    t = 1 / (1 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, 0.5 * erfc, 1 - 0.5 * erfc)


# --- the model --------------------------------------------------------------------------

def _array(values):
    return np.array([float(v) for v in values])


class Model:
    """Resolved parameters of one scenario, and the tables the simulation reuses."""

    def __init__(self, params):
        self.p = params
        self.C = params["cells"]
        self.cat = np.array(params["cell_categories"], dtype=np.int64)  # C x dimensions
        self.dims = len(params["dimensions"])
        self.pop = np.array(params["population"], dtype=np.int64)
        self.metrics = params["metrics"]
        self.K = len(self.metrics)
        self.m = {name: i for i, name in enumerate(self.metrics)}
        self._stop_tables(params)
        self.dbs = []
        for d, db in enumerate(params["databases"]):
            x = {key: _array(db[key]) for key in (
                "enrolment", "truth", "truth_unenrolled", "false_flag", "missing_flag",
                "wrong_link", "gallery_flag", "arrest", "referral", "detention")}
            x["name"] = db["name"]
            x["immigration"] = db["immigration"]
            if "fnmr" in db:
                self._match_tables(x, db)
            self.dbs.append(x)
        self.D = len(self.dbs)
        self.policies = []
        codes = {"street": STREET, "custody": CUSTODY, "none": NO_ACCESS,
                 "full": FULL, "flag-only": FLAG_ONLY}
        for pol in params["policies"]:
            access = np.array([[codes[a] for a in row] for row in pol["access"]])
            display = np.array([[codes.get(a, NO_DISPLAY) for a in row] for row in pol["display"]])
            verify = np.array(pol["verify"], dtype=float)
            self.policies.append({"name": pol["name"], "access": access, "display": display,
                                  "verify": verify})
        self.searched = [any((pol["access"][:, d] != NO_ACCESS).any() for pol in self.policies)
                         for d in range(self.D)]
        self._search_code_matrices()

    def _stop_tables(self, params):
        """Per-cell CDF tables of the zero-truncated negative binomial number of stops, laid
        end to end with cell c's values shifted by c, so that one searchsorted of u + c
        inverts every person's CDF at once."""
        mu = _array(params["mean_stops"])
        k = params["dispersion"]
        k = math.inf if k == "inf" else float(k)
        p_stop = np.zeros(self.C)
        tables, starts = [], []
        offset = 0
        for c in range(self.C):
            starts.append(offset)
            if mu[c] <= 0 or self.pop[c] <= 0:
                tables.append(np.array([c + 1.0]))
                offset += 1
                continue
            m = mu[c]
            if math.isinf(k):  # Poisson: P(Y = 0) = exp(-mu), pmf(y+1) / pmf(y) = mu / (y + 1)
                p0_log = -m
            else:  # P(Y = 0) = (k / (k + mu))^k; pmf(y+1) / pmf(y) = (y + k)/(y + 1) mu/(k + mu)
                p0_log = -k * math.log1p(m / k)
            p_stop[c] = -math.expm1(p0_log)
            # The truncated pmf from y = 1 by the ratio recurrence, in blocks until the CDF
            # reaches 1 - 1e-16 (or a million counts).
            cdf, y0, log_pmf, total = [], 1, p0_log - math.log(p_stop[c]), 0.0
            while total < 1 - 1e-16 and y0 < 1_000_000:
                y = np.arange(y0 - 1, y0 + 4095, dtype=float)  # ratio into y0 .. y0 + 4095
                ratio = m / (y + 1) if math.isinf(k) else (y + k) / (y + 1) * m / (k + m)
                logs = log_pmf + np.cumsum(np.log(ratio))
                pmf = np.exp(logs)
                block = total + np.cumsum(pmf)
                cut = np.searchsorted(block, 1 - 1e-16) + 1
                if pmf[-1] == 0:  # the rest underflows: rounding keeps the sum below 1
                    cut = min(cut, int(np.argmax(pmf == 0)) + 1)
                    y0 = 1_000_000
                cdf.append(block[:cut])
                total, log_pmf, y0 = block[min(cut, len(block)) - 1], logs[-1], y0 + 4096
            cdf = np.concatenate(cdf)
            cdf[-1] = 1.0
            tables.append(c + np.array(cdf))
            offset += len(cdf)
        self.p_stopped = p_stop
        exported = _array(params["p_stopped"])
        bad = np.abs(p_stop - exported) > 1e-9 * np.maximum(exported, 1e-300)
        if bad.any():
            raise SystemExit("stopscan_numpy: P(stopped) differs from the engine's in cells %s"
                             % np.nonzero(bad)[0][:5])
        self.stop_cdf = np.concatenate(tables)
        self.stop_start = np.array(starts, dtype=np.int64)
        self.stop_cdf1 = self.stop_cdf[self.stop_start] - np.arange(self.C)  # P(Y = 1 | Y >= 1)

    def _match_tables(self, x, db):
        """The score model of one database: FNMR, FPIR, genuine means, and per probe cell
        the gallery groups merged by impostor mean (owner cells within each)."""
        x["fnmr"] = _array(db["fnmr"])
        x["fpir"] = _array(db["fpir"])
        x["mu"] = _array(db["genuine_mean"])
        x["sigma"] = float(db["sigma"])
        x["tau"] = float(db["tau"])
        records = _array(db["records"])
        delta = np.array([[float(v) for v in row] for row in db["delta"]])
        groups = []  # per probe cell: (deltas[J], records[J], owner cells, owner cdf per group)
        for c in range(self.C):
            ok = np.isfinite(delta[c]) & (records > 0)
            uniq = np.unique(delta[c][ok])
            merged = []
            for dj in uniq:
                members = np.nonzero(ok & (delta[c] == dj))[0]
                w = records[members]
                merged.append((dj, w.sum(), members, np.cumsum(w) / w.sum()))
            groups.append(merged)
        x["groups"] = groups
        x["single"] = all(len(g) <= 1 for g in groups)
        if x["single"]:
            # One group per probe cell: its delta, records and owner CDF as C-row tables.
            x["g_delta"] = np.array([g[0][0] if g else 0.0 for g in groups])
            x["g_records"] = np.array([g[0][1] if g else 1.0 for g in groups])
            owner_cdf = np.ones((self.C, self.C))
            for c, g in enumerate(groups):
                if g:
                    row = np.zeros(self.C)
                    row[g[0][2]] = records[g[0][2]]
                    owner_cdf[c] = np.cumsum(row) / row.sum()
                    owner_cdf[c, -1] = 1.0
            x["owner_cdf"] = owner_cdf

    def _search_code_matrices(self):
        """W[d]: search state code -> metrics (0/1). Code bits: hit kind (0-1), mated (2),
        inaccurate (3), same cell (4), same category on dimension j (5 + j)."""
        self.codes = 1 << (5 + self.dims)
        self.W = []
        for d, db in enumerate(self.dbs):
            n = db["name"]
            W = np.zeros((self.codes, self.K), dtype=np.int64)
            for s in range(self.codes):
                hit, mated, inacc, same = s & 3, (s >> 2) & 1, (s >> 3) & 1, (s >> 4) & 1

                def add(metric):
                    W[s, self.m[metric + "." + n]] += 1

                add("searches")
                if mated:
                    add("mated_searches")
                    if hit not in (OWN, LINK):
                        add("mates_missed")
                else:
                    add("nonmated_searches")
                    if hit == FALSE:
                        add("nonmated_false_matches")
                if hit == FALSE:
                    if same:
                        add("false_matches_same_cell")
                    for j, dim in enumerate(self.p["dimensions"]):
                        if (s >> (5 + j)) & 1:
                            add("false_matches_same_" + dim)
                    add("false_matches")
                if hit != NONE:
                    add("hits")
                if hit == OWN:
                    add("true_matches")
                    if inacc:
                        add("record_error_hits")
                if hit == LINK:
                    add("record_error_hits")
            self.W.append(W)
        self.Wf = [W.astype(float) for W in self.W]

    # --- one replication ----------------------------------------------------------------

    def best_impostor(self, x, cells, rng, bisection=False):
        """Score and owner cell of the best impostor of searches of probe cells `cells`,
        given that it passes tau: P(max > s) = T with T uniform on (0, FPIR(c))."""
        n = len(cells)
        T = (1 - rng.random(n)) * x["fpir"][cells]  # in (0, FPIR]
        if x["single"] and not bisection:
            # One group of M records with mean delta: M log Phi(s - delta) = log(1 - T).
            q = -np.expm1(np.log1p(-T) / x["g_records"][cells])
            score = x["g_delta"][cells] - normal_quantile(q)
            u = rng.random(n)
            owner = (u[:, None] < x["owner_cdf"][cells]).argmax(axis=1)
            return score, owner
        # General: solve sum_j M_j log Phi(s - delta_j) = log(1 - T) by bisection, then the
        # group holding the maximum in proportion to its hazard at s, then the owner cell.
        score = np.empty(n)
        owner = np.empty(n, dtype=np.int64)
        for c in np.unique(cells):
            idx = np.nonzero(cells == c)[0]
            g = x["groups"][c]
            deltas = np.array([e[0] for e in g])
            recs = np.array([e[1] for e in g])
            target = np.log1p(-T[idx])
            lo = np.full(len(idx), x["tau"])
            hi = np.full(len(idx), x["tau"] + 40.0)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                f = (recs * np.log1p(-upper_tail(mid[:, None] - deltas))).sum(axis=1)
                above = f < target  # P(max <= mid) < 1 - T: the root is above mid
                lo = np.where(above, mid, lo)
                hi = np.where(above, hi, mid)
            s = 0.5 * (lo + hi)
            z = s[:, None] - deltas
            hazard = recs * np.exp(-0.5 * z * z) / (1 - upper_tail(z))
            cdf = np.cumsum(hazard, axis=1) / hazard.sum(axis=1, keepdims=True)
            j = (rng.random(len(idx))[:, None] < cdf).argmax(axis=1)
            u = rng.random(len(idx))
            for jj in np.unique(j):
                sel = j == jj
                members, member_cdf = g[jj][2], g[jj][3]
                owner[idx[sel]] = members[np.searchsorted(member_cdf, u[sel], side="right")
                                          .clip(max=len(members) - 1)]
            score[idx] = s
        return score, owner

    def replication(self, rng):
        """Tallies [policy, cell, metric] of one replication."""
        C, K, D = self.C, self.K, self.D
        n_cell = rng.binomial(self.pop, self.p_stopped)
        person_cell = np.repeat(np.arange(C), n_cell)
        N = len(person_cell)
        # Most stopped persons are stopped once: only the others search the long tables.
        u = rng.random(N)
        stops = np.ones(N, dtype=np.int64)
        more = np.nonzero(u >= self.stop_cdf1[person_cell])[0]
        pos = np.searchsorted(self.stop_cdf, u[more] + person_cell[more], side="right")
        stops[more] = pos - self.stop_start[person_cell[more]] + 1
        stop_person = np.repeat(np.arange(N), stops)
        stop_cell = person_cell[stop_person]
        S = len(stop_cell)

        tally = np.zeros((len(self.policies), C, K), dtype=np.int64)
        tally[:, :, self.m["stops"]] = np.bincount(stop_cell, minlength=C)
        tally[:, :, self.m["persons_stopped"]] = n_cell

        res = []  # per database: per-stop search results (policy-independent)
        for d, x in enumerate(self.dbs):
            u = rng.random((5, N))
            enrolled = u[0] < x["enrolment"][person_cell]
            truth = u[1] < np.where(enrolled, x["truth"][person_cell],
                                    x["truth_unenrolled"][person_cell])
            flag = enrolled & np.where(truth, u[2] >= x["missing_flag"][person_cell],
                                       u[2] < x["false_flag"][person_cell])
            link = enrolled & (u[3] < x["wrong_link"][person_cell])
            link_flag = link & (u[4] < x["gallery_flag"][person_cell])
            r = {"truth": truth[stop_person]}
            if not self.searched[d]:
                res.append(r)
                continue
            v = rng.random((2, S))
            mated = enrolled[stop_person]
            genuine_above = mated & (v[0] >= x["fnmr"][stop_cell])
            impostor_above = v[1] < x["fpir"][stop_cell]
            mate = genuine_above & ~impostor_above
            ev = np.nonzero(impostor_above)[0]
            fm = np.zeros(0, dtype=np.int64)
            if len(ev):
                ce = stop_cell[ev]
                score, owner = self.best_impostor(x, ce, rng)
                g_above = genuine_above[ev]
                genuine = x["mu"][ce] + x["sigma"] * normal_quantile(
                    np.where(g_above, v[0][ev], 0.5))
                wins = g_above & (genuine >= score)
                mate[ev[wins]] = True
                fm, fm_owner, fm_cell = ev[~wins], owner[~wins], ce[~wins]
            # What came back: the own (or linked) record, a false match, or nothing.
            sp_link = link[stop_person]
            hit = np.where(mate, np.where(sp_link, LINK, OWN), NONE).astype(np.int64)
            own_flag = flag[stop_person]
            shown_flag = mate & np.where(sp_link, link_flag[stop_person], own_flag)
            inaccurate = mate & (sp_link | (own_flag != r["truth"]))
            code = hit | (mated.astype(np.int64) << 2) | (inaccurate.astype(np.int64) << 3)
            if len(fm):
                hit[fm] = FALSE
                shown_flag[fm] = rng.random(len(fm)) < x["gallery_flag"][fm_owner]
                extra = FALSE | (mated[fm].astype(np.int64) << 2) | \
                    ((fm_owner == fm_cell).astype(np.int64) << 4)
                same = self.cat[fm_owner] == self.cat[fm_cell]
                for j in range(self.dims):
                    extra |= same[:, j].astype(np.int64) << (5 + j)
                code[fm] = extra
            r.update(hit=hit, flag=shown_flag, erroneous=(hit == FALSE) | inaccurate,
                     key=stop_cell * self.codes + code)
            res.append(r)

        # Stops where an action or a disclosure can happen under some policy: a flagged
        # result, or any hit on an immigration database.
        active = np.zeros(S, dtype=bool)
        for d, r in enumerate(res):
            if "hit" in r:
                active |= r["flag"]
                if self.dbs[d]["immigration"]:
                    active |= r["hit"] != NONE
        A = np.nonzero(active)[0]
        a_cell = stop_cell[A]
        draws = [rng.random((4, len(A))) for _ in range(D)]  # verify, arrest, referral, detention
        sub = [{k: r[k][A] for k in ("hit", "flag", "erroneous", "truth") if k in r}
               for r in res]

        for p, pol in enumerate(self.policies):
            t = tally[p]
            arrested = np.zeros(len(A), dtype=bool)
            referred = np.zeros(len(A), dtype=bool)
            wrongful_stop = np.zeros(len(A), dtype=bool)
            searched_sub = [None] * D
            counts = {}  # metric -> list of boolean masks over the active stops

            def add(metric, mask):
                counts.setdefault(metric, []).append(mask)

            for phase in (STREET, CUSTODY):
                for d in range(D):
                    if not self.searched[d]:
                        continue
                    access = self._rule(pol["access"], d, a_cell)
                    if phase == STREET:
                        on = access == STREET
                    else:
                        on = (access == CUSTODY) & arrested
                    on = np.broadcast_to(on, arrested.shape)
                    if not on.any():
                        continue
                    searched_sub[d] = on if searched_sub[d] is None else searched_sub[d] | on
                    s, x = sub[d], self.dbs[d]
                    display = self._rule(pol["display"], d, a_cell)
                    shown = on & (s["hit"] != NONE) & (display != NO_DISPLAY)
                    if x["immigration"]:
                        disclosed = shown & ((display == FULL) | s["flag"])
                        add("status_disclosures", disclosed)
                        add("lawful_status_disclosures", disclosed & ~s["truth"])
                    verify = self._rule(pol["verify"], d, a_cell)
                    acted = shown & s["flag"] & ~(s["erroneous"] & (draws[d][0] < verify))
                    wrongful = ~s["truth"]
                    arrest = acted & ~arrested & (draws[d][1] < x["arrest"][a_cell])
                    refer = acted & ~referred & (draws[d][2] < x["referral"][a_cell])
                    detain = refer & (draws[d][3] < x["detention"][a_cell])
                    arrested |= arrest
                    referred |= refer
                    for metric, mask in (("arrests", arrest), ("ho_referrals", refer),
                                         ("detentions", detain)):
                        add(metric, mask)
                        bad = mask & wrongful
                        add("wrongful_" + metric, bad)
                        add("wrongful_outcomes", bad)
                        if bad.any():
                            by_fm = bad & (s["hit"] == FALSE)
                            add("wrongful_by_false_match." + x["name"], by_fm)
                            add("wrongful_by_record_error." + x["name"], bad & ~by_fm)
                    wrongful_stop |= (arrest | refer) & wrongful

            for metric, masks in counts.items():
                k = self.m[metric]
                for mask in masks:
                    if mask.any():
                        t[:, k] += np.bincount(a_cell[mask], minlength=C)
            # Persons with at least one wrongful outcome.
            persons = np.unique(stop_person[A[wrongful_stop]])
            t[:, self.m["persons_wrongfully_affected"]] = np.bincount(person_cell[persons],
                                                                      minlength=C)
            # Search-level counts: one bincount over (cell, state code) per database.
            for d in range(D):
                if not self.searched[d]:
                    continue
                key = res[d]["key"]
                access = self._rule(pol["access"], d, stop_cell)
                street = np.broadcast_to(access == STREET, (S,))
                if street.all():
                    keys = key
                else:
                    keys = key[street]
                    if searched_sub[d] is not None:
                        custody = searched_sub[d] & (self._rule(pol["access"], d, a_cell)
                                                     == CUSTODY)
                        keys = np.concatenate([keys, key[A[custody]]])
                if len(keys) == 0:
                    continue
                # Counts are exact in float64 (< 2^53), and float matmul goes to BLAS.
                # Only the few codes that occur take part in the product.
                states = np.bincount(keys, minlength=C * self.codes).reshape(C, self.codes)
                used = np.nonzero(states.any(axis=0))[0]
                t += np.rint(states[:, used].astype(float) @ self.Wf[d][used]).astype(np.int64)
        return tally, S

    @staticmethod
    def _rule(table, d, cells):
        """A policy rule for database d: a scalar when the policy is uniform over cells,
        else one value per entry of `cells`."""
        column = table[:, d]
        if (column == column[0]).all():
            return column[0]
        return column[cells]


# --- modes ------------------------------------------------------------------------------

def run(model, replications, seed):
    out = []
    stops = 0
    for rep in range(replications):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rep])))
        t, s = model.replication(rng)
        out.append(t)
        stops += s
    return np.array(out), stops


def mode_time(model, args):
    model.replication(np.random.Generator(np.random.PCG64(0)))  # warm-up
    start = time.perf_counter()
    _, stops = run(model, args.replications, args.seed)
    seconds = time.perf_counter() - start
    print("seconds %.6f stops %d" % (seconds, stops))


def self_test_bisection(model):
    """The general (bisection) draw of the best impostor has the same law as the closed
    form: compare the mean score of both on the default's probe cells. Returns a message
    on failure."""
    for x in model.dbs:
        if "fpir" not in x or not x["single"]:
            continue
        cells = np.repeat(np.arange(model.C), 40)
        a, _ = model.best_impostor(x, cells, np.random.Generator(np.random.PCG64(7)))
        b, _ = model.best_impostor(x, cells, np.random.Generator(np.random.PCG64(7)),
                                   bisection=True)
        # Same uniforms, so the two scores of one draw agree to the erfc approximation.
        if np.max(np.abs(a - b)) > 1e-5:
            return "bisection and closed form disagree for %s by %.3g" % (
                x["name"], np.max(np.abs(a - b)))
    return None


def z_critical(alpha, comparisons):
    """Two-sided normal critical value for family-wise alpha, Bonferroni-split."""
    return float(-normal_quantile(np.array([alpha / (2 * comparisons)]))[0])


def mode_check(model, args):
    """Means over R replications against the closed form, per policy and metric, for the
    whole population and each category of each dimension.

    Tolerance: the replication mean of a count has standard error s / sqrt(R) (central limit
    theorem over independent replications). For rare counts the sample variance s^2 is
    unreliable, so the variance used is max(s^2, E): a sum of rare, nearly independent
    events is close to Poisson, variance about its mean E. A figure fails when
    |mean - E| > z * se, with z for a family-wise alpha of 1e-6 Bonferroni-split over all
    comparisons (STYLE.md, "Testing stochastic code"). Figures with fewer than 20 expected
    events over all replications are too rare for the normal approximation and are not
    compared (they are counted and reported)."""
    message = self_test_bisection(model)
    if message:
        print("FAILED: " + message)
        return 1
    tallies, _ = run(model, args.replications, args.seed)  # R x P x C x K
    expected = np.array(model.p["expected"])  # P x C x K
    R = args.replications
    groups = [("all", "all", np.ones(model.C, dtype=bool))]
    for j, dim in enumerate(model.p["dimensions"]):
        for k, name in enumerate(model.p["categories"][j]):
            groups.append((dim, name, model.cat[:, j] == k))
    rows = []
    for dim, cat, mask in groups:
        sims = tallies[:, :, mask, :].sum(axis=2).astype(float)  # R x P x K
        exp = expected[:, mask, :].sum(axis=1)  # P x K
        mean = sims.mean(axis=0)
        var = np.maximum(sims.var(axis=0, ddof=1), exp)
        se = np.sqrt(var / R)
        for p in range(len(model.policies)):
            for k in range(model.K):
                rows.append((dim, cat, model.policies[p]["name"], model.metrics[k],
                             mean[p, k], exp[p, k], se[p, k]))
    compared = [r for r in rows if r[5] * R >= 20]
    z = z_critical(1e-6, len(compared))
    failures = []
    worst = (0.0, None)
    for row in compared:
        dev = abs(row[4] - row[5]) / row[6] if row[6] > 0 else (0 if row[4] == row[5] else 1e9)
        if dev > worst[0]:
            worst = (dev, row)
        if dev > z:
            failures.append((dev, row))
    print("check: %d replications, %d figures compared (%d too rare), z limit %.2f"
          % (R, len(compared), len(rows) - len(compared), z))
    if worst[1]:
        w = worst[1]
        print("  largest deviation: %.2f se  (%s=%s, %s, %s: mean %.6g, expected %.6g)"
              % (worst[0], w[0], w[1], w[2], w[3], w[4], w[5]))
    for name in ("stops", "false_matches.IDENT1", "false_matches.IABS", "wrongful_outcomes"):
        for row in compared:
            if row[0] == "all" and row[2] == model.policies[0]["name"] and row[3] == name:
                print("  %-28s mean %12.3f  expected %12.3f  (%+.2f se)"
                      % (name, row[4], row[5], (row[4] - row[5]) / row[6]))
    if failures:
        failures.sort(key=lambda f: -f[0])
        print("FAILED: %d figures disagree with the closed form beyond %.2f se:"
              % (len(failures), z))
        for dev, row in failures[:20]:
            print("  %.2f se: %s=%s, %s, %s: mean %.6g, expected %.6g"
                  % (dev, row[0], row[1], row[2], row[3], row[4], row[5]))
        return 1
    print("check passed: the NumPy means agree with explain")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("time", "check"))
    parser.add_argument("--params", required=True, help="JSON from bench_numpy_reference --export")
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    with open(args.params) as f:
        model = Model(json.load(f))
    if args.mode == "time":
        mode_time(model, args)
        return 0
    return mode_check(model, args)


if __name__ == "__main__":
    sys.exit(main())
