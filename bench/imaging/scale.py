# ruff: noqa: S608  (numbers and constants only are interpolated into the SQL; no outside input)
"""The scale run: 1,000,000 instances written straight into the imaging index with SQL (owner connection, no
files behind them), spread over 24 facilities (the 6 imaging facilities of the demo region plus 18 stand-ins for
the rest of a region), then QIDO through HTTP as tech_a (row-level security applies)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

SURNAMES = [("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
            ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴")]
ROOT = "1.2.826.0.1.3680043.10.544."


def facilities() -> list[tuple[uuid.UUID, int, str]]:
    """(facility id, weight in 1/10000, label): bigger hospitals archive more."""
    from gateway.identity.seed import DEMO_FACILITIES

    weights = {"hospital": 2000, "township": 500, "village": 100}
    out = []
    for f in DEMO_FACILITIES:
        kind = str(getattr(f.kind, "value", f.kind))
        if kind in weights:
            out.append((f.id, weights[kind], f.code))
    rest = 10000 - sum(w for _, w, _ in out)
    n = 24 - len(out)
    for i in range(n):
        fid = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-imaging-facility-{i}")
        out.append((fid, rest // n + (1 if i < rest % n else 0), f"other-{i}"))
    return out


def sql_statements(studies: int, per_study: int, patients: int) -> list[tuple[str, str]]:
    """The fill, statement by statement (numbers only are interpolated: no outside input)."""
    sur = "ARRAY[" + ",".join(f"'{a}'" for a, _ in SURNAMES) + "]"
    han = "ARRAY[" + ",".join(f"'{b}'" for _, b in SURNAMES) + "]"
    half = per_study // 2
    return [
        ("patients", f"""
CREATE TEMP TABLE bench_pat AS
SELECT p, md5('bench-pat-' || p)::uuid AS id, f.id AS fac, 'SP' || lpad(p::text, 7, '0') AS pid,
       ({sur})[p % 10 + 1] AS sur, ({han})[p % 10 + 1] AS han
FROM generate_series(1, {patients}) p
JOIN bench_fac f ON (p::bigint * 7919 + 13) % 10000 BETWEEN f.lo AND f.hi;
INSERT INTO imaging.patients (id, facility_id, patient_key, patient_id, patient_name, birth_date, sex, attributes)
SELECT id, fac, pid || '|', pid, sur || '^Given' || p || '=' || han || '^名' || p,
       date '1940-01-01' + (p * 97) % 25000, CASE WHEN p % 2 = 0 THEN 'F' ELSE 'M' END,
       jsonb_build_object('00100020', jsonb_build_object('vr', 'LO', 'Value', jsonb_build_array(pid)))
FROM bench_pat;"""),
        ("studies", f"""
CREATE TEMP TABLE bench_study AS
SELECT g, md5('bench-study-' || g)::uuid AS id, bp.fac, bp.id AS patient_ref, bp.pid, bp.sur, bp.han, bp.p,
       '{ROOT}1.' || g AS uid,
       date '2021-01-01' + ((g::bigint * 2654435761) % 1461)::int AS d,
       make_time(7 + g % 11, g % 60, (g % 47)::float8) AS t,
       (ARRAY['CT','CT','CT','CT','DX','DX','DX','US','US','MR'])[g % 10 + 1] AS modality
FROM generate_series(1, {studies}) g
JOIN bench_pat bp ON bp.p = 1 + (g::bigint * 7907) % {patients};
INSERT INTO imaging.studies (id, facility_id, patient_ref, study_instance_uid, patient_id, patient_name, pn_alpha,
    pn_ideographic, pn_phonetic, pn_search, patient_birth_date, patient_sex, study_date, study_time,
    accession_number, study_id, study_description, description_search, referring_search, modalities,
    num_series, num_instances, size_bytes, attributes, received_at, updated_at)
SELECT id, fac, patient_ref, uid, pid, sur || '^Given' || p || '=' || han || '^名' || p,
       lower(sur) || '^given' || p, han || '^名' || p, '', lower(sur) || '^given' || p || '=' || han || '^名' || p,
       date '1940-01-01' + (p * 97) % 25000, CASE WHEN p % 2 = 0 THEN 'F' ELSE 'M' END, d, t,
       'SA' || g, '1', modality || ' EXAM', lower(modality) || ' exam', '', ARRAY[modality],
       2, {per_study}, {per_study} * 530000,
       jsonb_build_object(
         '00080020', jsonb_build_object('vr', 'DA', 'Value', jsonb_build_array(to_char(d, 'YYYYMMDD'))),
         '00080030', jsonb_build_object('vr', 'TM', 'Value', jsonb_build_array(to_char(t, 'HH24MISS'))),
         '00080050', jsonb_build_object('vr', 'SH', 'Value', jsonb_build_array('SA' || g)),
         '00081030', jsonb_build_object('vr', 'LO', 'Value', jsonb_build_array(modality || ' EXAM')),
         '00100010', jsonb_build_object('vr', 'PN', 'Value', jsonb_build_array(jsonb_build_object(
             'Alphabetic', sur || '^Given' || p, 'Ideographic', han || '^名' || p))),
         '00100020', jsonb_build_object('vr', 'LO', 'Value', jsonb_build_array(pid)),
         '00100030', jsonb_build_object('vr', 'DA', 'Value',
             jsonb_build_array(to_char(date '1940-01-01' + (p * 97) % 25000, 'YYYYMMDD'))),
         '0020000D', jsonb_build_object('vr', 'UI', 'Value', jsonb_build_array(uid)),
         '00200010', jsonb_build_object('vr', 'SH', 'Value', jsonb_build_array('1'))),
       d + t, d + t
FROM bench_study;"""),
        ("series", f"""
INSERT INTO imaging.series (id, facility_id, study_ref, series_instance_uid, modality, series_number,
    series_description, performed_start_date, num_instances, size_bytes, attributes, received_at, updated_at)
SELECT md5('bench-series-' || s.g || '.' || k)::uuid, s.fac, s.id, '{ROOT}2.' || s.g || '.' || k, s.modality, k,
       'SERIES ' || k, s.d, {half}, {half} * 530000,
       jsonb_build_object(
         '00080060', jsonb_build_object('vr', 'CS', 'Value', jsonb_build_array(s.modality)),
         '0020000E', jsonb_build_object('vr', 'UI', 'Value', jsonb_build_array('{ROOT}2.' || s.g || '.' || k)),
         '00200011', jsonb_build_object('vr', 'IS', 'Value', jsonb_build_array(k))),
       s.d + s.t, s.d + s.t
FROM bench_study s CROSS JOIN generate_series(1, 2) k;"""),
        ("instances", f"""
INSERT INTO imaging.instances (id, facility_id, source_facility_id, study_ref, series_ref, sop_instance_uid,
    sop_class_uid, instance_number, transfer_syntax_uid, number_of_frames, pixel_data_offset, pixel_data_length,
    object_key, size_bytes, sha256, metadata, origin, received_at)
SELECT gen_random_uuid(), s.fac, s.fac, s.id, md5('bench-series-' || s.g || '.' || k)::uuid,
       '{ROOT}3.' || s.g || '.' || k || '.' || n, '1.2.840.10008.5.1.4.1.1.2', n, '1.2.840.10008.1.2.1', 1,
       1200, 524288, 'imaging/bench/' || s.g || '/' || k || '/' || n || '.dcm', 525488,
       md5(s.g || '.' || k || '.' || n),
       jsonb_build_object(
         '00080016', jsonb_build_object('vr', 'UI', 'Value', jsonb_build_array('1.2.840.10008.5.1.4.1.1.2')),
         '00080018', jsonb_build_object('vr', 'UI', 'Value',
             jsonb_build_array('{ROOT}3.' || s.g || '.' || k || '.' || n)),
         '00200013', jsonb_build_object('vr', 'IS', 'Value', jsonb_build_array(n)),
         '00280010', jsonb_build_object('vr', 'US', 'Value', jsonb_build_array(512)),
         '00280011', jsonb_build_object('vr', 'US', 'Value', jsonb_build_array(512)),
         '7FE00010', jsonb_build_object('vr', 'OW', 'BulkDataURI',
             '$DW$/studies/' || s.uid || '/series/{ROOT}2.' || s.g || '.' || k || '/instances/{ROOT}3.' || s.g || '.'
             || k || '.' || n || '/bulkdata/7FE00010')),
       'stow', s.d + s.t
FROM bench_study s CROSS JOIN generate_series(1, 2) k CROSS JOIN generate_series(1, {half}) n;"""),
        ("analyze", "ANALYZE imaging.patients; ANALYZE imaging.studies; ANALYZE imaging.series;"
                    " ANALYZE imaging.instances;"),
    ]


async def fill(dsn: str, studies: int = 50_000, per_study: int = 20, patients: int = 25_000) -> dict[str, object]:
    """Insert the rows; returns timings and counts."""
    conn = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'; SET work_mem = '64MB'")
        await conn.execute("CREATE TEMP TABLE bench_fac (id uuid, lo int, hi int, label text)")
        lo = 0
        rows = []
        for fid, w, label in facilities():
            rows.append((fid, lo, lo + w - 1, label))
            lo += w
        await conn.executemany("INSERT INTO bench_fac VALUES ($1, $2, $3, $4)", rows)
        for name, sql in sql_statements(studies, per_study, patients):
            t0 = time.perf_counter()
            await conn.execute(sql)
            timings[name] = round(time.perf_counter() - t0, 1)
            print(f"  scale fill: {name} {timings[name]} s", flush=True)
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM imaging.{t}")
                  for t in ("patients", "studies", "series", "instances")}
        size = await conn.fetchval("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c"
                                   " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'imaging'"
                                   " AND c.relkind = 'r'")
    finally:
        await conn.close()
    return {"seconds": timings, "rows": counts, "imaging_schema_size": size, "facilities": 24}


async def sample(dsn: str, facility: uuid.UUID, n: int = 40) -> dict[str, list[str]]:
    """Keys to query as a user of ``facility``: patient ids, 7-day ranges, name prefixes, all with matches."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = [r[0] for r in await conn.fetch(
            "SELECT patient_id FROM imaging.studies WHERE facility_id = $1 AND study_instance_uid LIKE $2"
            " ORDER BY md5(patient_id) LIMIT $3", facility, ROOT + "%", n)]
        dates = [r[0] for r in await conn.fetch(
            "SELECT study_date FROM imaging.studies WHERE facility_id = $1 AND study_instance_uid LIKE $2"
            " ORDER BY md5(id::text) LIMIT $3", facility, ROOT + "%", n)]
        names = [r[0] for r in await conn.fetch(
            "SELECT pn_alpha FROM imaging.studies WHERE facility_id = $1 AND study_instance_uid LIKE $2"
            " ORDER BY md5(accession_number) LIMIT $3", facility, ROOT + "%", n)]
        visible = await conn.fetchval("SELECT count(*) FROM imaging.instances WHERE facility_id = $1", facility)
    finally:
        await conn.close()
    from datetime import timedelta

    return {
        "patient_id": [f"studies?PatientID={p}" for p in pids],
        "date_range_7d": [f"studies?StudyDate={d:%Y%m%d}-{d + timedelta(days=6):%Y%m%d}" for d in dates],
        # 'wang^given1234' -> 'Wang^Given12*': a surname and the start of the given name
        "name_prefix": [f"studies?PatientName={nm.split('^')[0].title()}^Given{nm.split('given')[1][:2]}*"
                        for nm in names],
        "_visible_instances": [str(visible)],
    }


if __name__ == "__main__":  # a quick look at the generated SQL
    for name, sql in sql_statements(10, 20, 5):
        print(f"-- {name}\n{sql}\n")
    asyncio.run(asyncio.sleep(0))
