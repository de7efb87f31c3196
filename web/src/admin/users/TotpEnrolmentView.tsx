/** An authenticator enrolment, shown once: the otpauth URI as a QR code (drawn here), the secret as text. */
import { useMemo, useState } from "react";
import { useI18n } from "../../i18n";
import type { TotpEnrolment } from "../api";
import { encodeQr, qrPath } from "../qr";

function grouped(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

export function QrCodeSvg({ text, label, size = 200 }: { text: string; label: string; size?: number }) {
  const code = useMemo(() => encodeQr(text, "M"), [text]);
  const border = 4;
  const dim = code.size + border * 2;
  return (
    <svg
      className="adm-qr"
      width={size}
      height={size}
      viewBox={`0 0 ${dim} ${dim}`}
      role="img"
      aria-label={label}
      shapeRendering="crispEdges"
      data-testid="totp-qr"
      data-version={code.version}
    >
      <rect width={dim} height={dim} fill="#fff" />
      <path d={qrPath(code, border)} fill="#000" />
    </svg>
  );
}

function CopyButton({ text, testId }: { text: string; testId?: string }) {
  const { t } = useI18n();
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="btn btn-ghost btn-small"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => setDone(true), () => undefined);
      }}
      data-testid={testId}
    >
      {done ? t.admin.copied : t.admin.copy}
    </button>
  );
}

export function TotpEnrolmentView({ enrolment, account }: { enrolment: TotpEnrolment; account: string }) {
  const { t } = useI18n();
  const tt = t.admin.totp;
  return (
    <section className="adm-totp" data-testid="totp-enrolment" aria-label={tt.title}>
      <p className="adm-once" role="note">
        {tt.onceOnly}
      </p>
      <div className="adm-totp-body">
        <QrCodeSvg text={enrolment.otpauth_uri} label={tt.qrLabel(account)} />
        <div className="adm-totp-text">
          <p>{tt.scan}</p>
          <p className="muted adm-small">{tt.secret}</p>
          <div className="adm-secret-row">
            <code className="adm-secret" data-testid="totp-secret" data-secret={enrolment.secret}>
              {grouped(enrolment.secret)}
            </code>
            <CopyButton text={enrolment.secret} testId="totp-secret-copy" />
          </div>
          <details className="adm-uri">
            <summary>{tt.uri}</summary>
            <code data-testid="totp-uri">{enrolment.otpauth_uri}</code>
          </details>
        </div>
      </div>
    </section>
  );
}

export function PasswordOnce({ password, testId }: { password: string; testId: string }) {
  return (
    <div className="adm-secret-row">
      <code className="adm-secret adm-password" data-testid={testId}>
        {password}
      </code>
      <CopyButton text={password} />
    </div>
  );
}
