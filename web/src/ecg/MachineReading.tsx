/**
 * The machine reading at a glance: measurement tiles coloured against adult reference ranges, the frontal
 * axes on a hexaxial wheel, lead quality, critical findings, and the interpretation statements — all marked
 * "machine analysis, awaiting a physician".
 */
import { useI18n } from "../i18n";
import type { Recording } from "./api";
import { statementText } from "./format";
import { MEASURES, deviceMeasurements, levelOf, machineMeasurements, type MeasureKey } from "./measurements";

export function MachineReading({ recording }: { recording: Recording }) {
  const { t, lang } = useI18n();
  const a = recording.analysis;
  const tm = t.ecg.machine;
  if (!a) return null;
  const values = machineMeasurements(a);
  const device = deviceMeasurements(recording.device_measurements);
  const hasDevice = Object.keys(device).length > 0;
  const statements = (a.statements ?? []).filter((s) => s.code !== "machine_generated");
  const poor = (a.quality?.leads ?? []).filter((l) => !l.usable).map((l) => l.lead);
  const counts = a.beats?.counts ?? {};

  return (
    <section className="panel ecg-machine" data-testid="machine-reading">
      <header className="ecg-machine-header">
        <h2>{tm.title}</h2>
        <span className="badge ecg-machine-flag" data-testid="machine-disclaimer">
          {tm.disclaimer}
        </span>
      </header>

      {recording.findings.length > 0 ? (
        <div className="ecg-findings" data-testid="machine-critical">
          <strong>{t.ecg.critical}</strong>
          <ul>
            {recording.findings.map((f, i) => (
              <li key={`${f.code}-${i}`}>{(lang === "en" ? f.en : f.zh) || f.code}</li>
            ))}
          </ul>
        </div>
      ) : null}

      <div className="ecg-machine-body">
        <div className="ecg-tiles" data-testid="machine-measurements">
          {MEASURES.filter((d) => d.key !== "qtcf_ms" || values.qtcf_ms !== undefined).map((def) => {
            const v = values[def.key];
            const level = levelOf(def, v);
            return (
              <div key={def.key} className={`ecg-tile ecg-level-${level}`} data-testid={`machine-${def.key}`}>
                <span className="ecg-tile-label">{tm.measure[def.key as MeasureKey]}</span>
                <span className="ecg-tile-value">
                  {v ?? "—"}
                  <small>{v !== undefined ? def.unit : ""}</small>
                </span>
                {hasDevice && device[def.key] !== undefined ? (
                  <span className="ecg-tile-device" title={tm.deviceTitle}>
                    {tm.device} {device[def.key]}
                  </span>
                ) : def.normal ? (
                  <span className="ecg-tile-range">
                    {def.normal[0]}–{def.normal[1]}
                  </span>
                ) : null}
              </div>
            );
          })}
        </div>
        <AxisWheel p={values.p_axis_deg} qrs={values.qrs_axis_deg} t={values.t_axis_deg} />
      </div>

      <div className="ecg-machine-statements">
        <h3>{tm.statements}</h3>
        {statements.length ? (
          <ol data-testid="machine-statements">
            {statements.map((st, i) => (
              <li key={`${st.code ?? "s"}-${i}`}>{statementText(st, lang)}</li>
            ))}
          </ol>
        ) : (
          <p className="muted">{tm.noStatements}</p>
        )}
      </div>

      <footer className="ecg-machine-footer muted">
        {a.beats?.count !== undefined ? <span>{tm.beats(a.beats.count, counts.V ?? 0, counts.S ?? 0)}</span> : null}
        <span>{poor.length ? tm.poorLeads(poor.join("、")) : tm.allLeadsUsable}</span>
      </footer>
    </section>
  );
}

/** The frontal plane: hexaxial reference (I 0°, II 60°, aVF 90°, III 120°, aVL −30°, aVR −150°) with axis arrows. */
export function AxisWheel({ p, qrs, t: tAxis }: { p?: number; qrs?: number; t?: number }) {
  const { t } = useI18n();
  const r = 46;
  const c = 60;
  const at = (deg: number, radius: number) => {
    const rad = (deg * Math.PI) / 180;
    return [c + radius * Math.cos(rad), c + radius * Math.sin(rad)] as const;
  };
  const refs: [string, number][] = [
    ["I", 0],
    ["II", 60],
    ["aVF", 90],
    ["III", 120],
    ["aVL", -30],
    ["aVR", -150],
  ];
  const arrows: [string, number | undefined, string][] = [
    ["P", p, "#2e7d32"],
    ["QRS", qrs, "#111"],
    ["T", tAxis, "#1565c0"],
  ];
  // the normal QRS axis sector, −30° to +90°
  const [sx, sy] = at(-30, r);
  const [ex, ey] = at(90, r);
  return (
    <figure className="ecg-axis" data-testid="axis-wheel">
      <svg viewBox="0 0 120 120" width="150" height="150" role="img" aria-label={t.ecg.machine.axisTitle}>
        <path d={`M${c},${c} L${sx},${sy} A${r},${r} 0 0 1 ${ex},${ey} Z`} fill="#e5f3ea" />
        <circle cx={c} cy={c} r={r} fill="none" stroke="#c9d3db" />
        {refs.map(([name, deg]) => {
          const [x1, y1] = at(deg, r);
          const [x2, y2] = at(deg + 180, r);
          const [lx, ly] = at(deg, r + 8);
          return (
            <g key={name}>
              <line x1={x2} y1={y2} x2={x1} y2={y1} stroke="#dde3e8" strokeWidth="0.8" />
              <text x={lx} y={ly} fontSize="7" textAnchor="middle" dominantBaseline="middle" fill="#5d6b78">
                {name}
              </text>
            </g>
          );
        })}
        {arrows.map(([name, deg, color]) => {
          if (deg === undefined) return null;
          const [x, y] = at(deg, r - 4);
          const [hx1, hy1] = at(deg - 8, r - 12);
          const [hx2, hy2] = at(deg + 8, r - 12);
          return (
            <g key={name} data-axis={name}>
              <line x1={c} y1={c} x2={x} y2={y} stroke={color} strokeWidth={name === "QRS" ? 2.4 : 1.6} />
              <path d={`M${x},${y} L${hx1},${hy1} L${hx2},${hy2} Z`} fill={color} />
            </g>
          );
        })}
      </svg>
      <figcaption>
        {arrows.map(([name, deg, color]) => (
          <span key={name} style={{ color }}>
            {name} {deg !== undefined ? `${deg}°` : "—"}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
