import { useEffect, useRef, useState, type FormEvent } from "react";
import { Navigate, useLocation } from "react-router-dom";
import { ApiError } from "../api/errors";
import { login } from "../api/session";
import { useSession } from "../auth/useSession";
import { useI18n } from "../i18n";
import { LanguageSwitch } from "../shell/LanguageSwitch";
import { LogoMark } from "../ui/Icon";
import { loginErrorMessage } from "./loginErrors";

interface LoginLocationState {
  from?: string;
  reason?: string;
}

/** Username + password; a second step for the TOTP code when the gateway answers `mfa_required`. */
export function LoginPage() {
  const { t, locale } = useI18n();
  const session = useSession();
  const location = useLocation();
  const routeState = (location.state ?? {}) as LoginLocationState;
  const [step, setStep] = useState<"password" | "totp">("password");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const totpRef = useRef<HTMLInputElement>(null);
  const usernameRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (step === "totp") totpRef.current?.focus();
    else usernameRef.current?.focus();
  }, [step]);

  if (session.status === "authenticated") {
    const target = routeState.from && routeState.from !== "/login" ? routeState.from : "/home";
    return <Navigate to={target} replace />;
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setFormError(null);
    if (step === "password" && (!username.trim() || !password)) {
      setFormError(t.login.required);
      return;
    }
    if (step === "totp" && !/^\d{6}$/.test(totp)) {
      setFormError(t.login.totpFormat);
      return;
    }
    setBusy(true);
    try {
      await login(username.trim(), password, step === "totp" ? totp : undefined);
    } catch (err) {
      if (step === "password" && err instanceof ApiError && err.code === "mfa_required") {
        setStep("totp");
      } else {
        setError(err);
        if (step === "totp") setTotp("");
      }
    } finally {
      setBusy(false);
    }
  };

  const backToPassword = () => {
    setStep("password");
    setTotp("");
    setError(null);
    setFormError(null);
  };

  const message =
    formError ??
    (error !== null
      ? loginErrorMessage(error, step, t, locale)
      : routeState.reason === "expired"
        ? t.login.errors.sessionExpired
        : null);

  return (
    <div className="login-page">
      <div className="login-lang">
        <LanguageSwitch />
      </div>
      <main className="login-card">
        <div className="login-brand">
          <LogoMark size={44} />
          <div>
            <h1 data-testid="app-title">{t.app.name}</h1>
            <p className="muted">{t.app.tagline}</p>
          </div>
        </div>
        <form onSubmit={submit} noValidate data-testid="login-form" aria-busy={busy}>
          {step === "password" ? (
            <>
              <h2>{t.login.title}</h2>
              <p className="muted">{t.login.subtitle}</p>
              <label className="field">
                <span>{t.login.username}</span>
                <input
                  ref={usernameRef}
                  name="username"
                  autoComplete="username"
                  autoCapitalize="off"
                  spellCheck={false}
                  value={username}
                  onChange={(e) => setUsername(e.target.value)}
                  disabled={busy}
                  data-testid="login-username"
                />
              </label>
              <label className="field">
                <span>{t.login.password}</span>
                <input
                  name="password"
                  type="password"
                  autoComplete="current-password"
                  value={password}
                  onChange={(e) => setPassword(e.target.value)}
                  disabled={busy}
                  data-testid="login-password"
                />
              </label>
            </>
          ) : (
            <div data-testid="login-step-totp">
              <h2>{t.login.totpTitle}</h2>
              <p className="muted">{t.login.totpPrompt}</p>
              <p className="totp-account" data-testid="login-totp-account">
                {t.login.account(username.trim())}
              </p>
              <label className="field">
                <span>{t.login.totp}</span>
                <input
                  ref={totpRef}
                  name="totp"
                  className="totp-input"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  pattern="[0-9]{6}"
                  maxLength={6}
                  value={totp}
                  onChange={(e) => setTotp(e.target.value.replace(/\D/g, "").slice(0, 6))}
                  disabled={busy}
                  data-testid="login-totp"
                />
              </label>
            </div>
          )}
          {message ? (
            <div className="form-error" role="alert" data-testid="login-error">
              {message}
            </div>
          ) : null}
          <button type="submit" className="btn btn-primary btn-block" disabled={busy} data-testid="login-submit">
            {busy ? t.login.submitting : step === "password" ? t.login.submit : t.login.totpSubmit}
          </button>
          {step === "totp" ? (
            <button type="button" className="btn btn-link" onClick={backToPassword} data-testid="login-back">
              {t.login.totpBack}
            </button>
          ) : null}
        </form>
        <p className="login-notice">{t.login.notice}</p>
      </main>
    </div>
  );
}
