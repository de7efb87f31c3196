/** Loading, empty and error states, the same everywhere. */
import type { ReactNode } from "react";
import { ApiError, NetworkError } from "../api/errors";
import { useI18n, type Dictionary } from "../i18n";
import { Icon } from "./Icon";

export function Loading({ label }: { label?: string }) {
  const { t } = useI18n();
  return (
    <div className="state state-loading" role="status" aria-live="polite" data-testid="loading">
      <span className="spinner" aria-hidden="true" />
      <span>{label ?? t.common.loading}</span>
    </div>
  );
}

export function FullPageLoading() {
  return (
    <div className="full-page-center">
      <Loading />
    </div>
  );
}

export function EmptyState({ title, children }: { title?: string; children?: ReactNode }) {
  const { t } = useI18n();
  return (
    <div className="state state-empty" data-testid="empty-state">
      <strong>{title ?? t.common.empty}</strong>
      {children ? <p>{children}</p> : null}
    </div>
  );
}

/** The message to show a person for an error from the platform. */
export function errorMessage(err: unknown, t: Dictionary): string {
  if (err instanceof NetworkError) return t.common.networkError;
  if (err instanceof ApiError) {
    if (err.status >= 500) return t.common.unavailable;
    return err.detail || t.common.unknownError;
  }
  return t.common.unknownError;
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useI18n();
  return (
    <div className="state state-error" role="alert" data-testid="error-state">
      <Icon name="alert" />
      <span>{errorMessage(error, t)}</span>
      {onRetry ? (
        <button type="button" className="btn btn-secondary btn-small" onClick={onRetry}>
          {t.common.retry}
        </button>
      ) : null}
    </div>
  );
}

export function ComingSoon({ testId = "coming-soon" }: { testId?: string }) {
  const { t } = useI18n();
  return (
    <div className="coming-soon" data-testid={testId}>
      <span className="badge badge-muted">{t.common.comingSoon}</span>
      <p>{t.common.comingSoonDetail}</p>
    </div>
  );
}
