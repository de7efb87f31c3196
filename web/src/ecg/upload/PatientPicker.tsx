/** Find a patient of the facility by name, 身份证号 or mobile (GET /api/health/patients?q=); optional. */
import { useEffect, useState } from "react";
import { useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import { searchPatients, type Patient } from "../api";

export function PatientPicker({ value, onChange }: { value: Patient | null; onChange: (p: Patient | null) => void }) {
  const { t } = useI18n();
  const tp = t.ecg.patient;
  const [query, setQuery] = useState("");
  const [results, setResults] = useState<Patient[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);

  useEffect(() => {
    const q = query.trim();
    if (q.length < 1) {
      setResults(null);
      setError(null);
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      setLoading(true);
      searchPatients(q, controller.signal)
        .then((page) => {
          setResults(page.items);
          setError(null);
        })
        .catch((err: unknown) => {
          if (!controller.signal.aborted) setError(err);
        })
        .finally(() => {
          if (!controller.signal.aborted) setLoading(false);
        });
    }, 300);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [query]);

  if (value) {
    return (
      <div className="patient-chip" data-testid="ecg-patient-selected">
        <strong>{value.name}</strong>
        <span className="muted">
          {t.ecg.sex[value.sex] ?? value.sex}
          {value.birth_date ? ` · ${value.birth_date}` : ""}
          {value.id_number ? ` · ${maskId(value.id_number)}` : ""}
        </span>
        <button type="button" className="btn btn-ghost btn-small" onClick={() => onChange(null)}>
          {tp.change}
        </button>
      </div>
    );
  }

  return (
    <div className="patient-picker">
      <input
        type="search"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        placeholder={tp.placeholder}
        data-testid="ecg-patient-search"
        aria-label={tp.placeholder}
      />
      {query.trim() ? (
        <div className="patient-results" role="listbox">
          {loading && !results ? <div className="muted patient-result">{t.common.loading}</div> : null}
          {error ? <div className="state-error patient-result">{errorMessage(error, t)}</div> : null}
          {results && results.length === 0 ? <div className="muted patient-result">{tp.none}</div> : null}
          {results?.map((p) => (
            <button
              key={p.id}
              type="button"
              role="option"
              aria-selected={false}
              className="patient-result"
              data-testid="ecg-patient-option"
              onClick={() => {
                onChange(p);
                setQuery("");
              }}
            >
              <strong>{p.name}</strong>
              <span className="muted">
                {t.ecg.sex[p.sex] ?? p.sex}
                {p.birth_date ? ` · ${p.birth_date}` : ""}
                {p.id_number ? ` · ${maskId(p.id_number)}` : ""}
              </span>
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}

/** 身份证号 with the middle hidden: 3201**********1234. */
export function maskId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 4)}${"*".repeat(id.length - 8)}${id.slice(-4)}` : id;
}
