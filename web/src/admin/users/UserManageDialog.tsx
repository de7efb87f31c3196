/**
 * One account: change name, facility and roles; and the security actions — reset the password (the
 * admin sets a temporary one, shown once), unlock, re-enrol the authenticator (QR shown once),
 * deactivate or reactivate.
 */
import { useState, type FormEvent } from "react";
import type { Role } from "../../api/session";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import {
  ADMIN_ROLES,
  deactivateUser,
  enrolTotp,
  resetPassword,
  unlockUser,
  updateUser,
  type FacilityNode,
  type TotpEnrolment,
  type UserSummary,
  type UserUpdate,
} from "../api";
import { actionError, formErrors, NO_ERRORS, type FormErrors } from "../errors";
import { FacilitySelect } from "../FacilitySelect";
import { Field, shanghaiDateTime } from "../format";
import { Modal } from "../Modal";
import { generatePassword } from "../password";
import { RolePicker } from "./RolePicker";
import { PasswordOnce, TotpEnrolmentView } from "./TotpEnrolmentView";
import { UserStatusBadges } from "./UserStatusBadges";

const FIELDS = ["display_name", "facility_id", "roles", "password"];

type Pending = "reset" | "totp" | "deactivate" | null;

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

export function UserManageDialog({
  initial,
  flat,
  grantable,
  onClose,
  onChanged,
}: {
  initial: UserSummary;
  flat: { node: FacilityNode; depth: number }[];
  grantable: readonly Role[];
  onClose: () => void;
  onChanged: () => void;
}) {
  const { t } = useI18n();
  const tu = t.admin.users;
  const me = useUser();
  const [user, setUser] = useState(initial);
  const [displayName, setDisplayName] = useState(initial.display_name);
  const [facility, setFacility] = useState(initial.facility.id);
  const [roles, setRoles] = useState<Role[]>(initial.roles);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [saveNote, setSaveNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const [pending, setPending] = useState<Pending>(null);
  const [newPassword, setNewPassword] = useState("");
  const [passwordError, setPasswordError] = useState<string | null>(null);
  const [shownPassword, setShownPassword] = useState<string | null>(null);
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [actionFailure, setActionFailure] = useState<string | null>(null);

  const self = user.id === me.id;
  const platformTarget = user.roles.includes("platform_admin") && !me.roles.includes("platform_admin");
  const locked = !!user.locked_until && new Date(user.locked_until).getTime() > Date.now();
  const addsAdmin = roles.some((r) => ADMIN_ROLES.includes(r) && !user.roles.includes(r));

  const accept = (next: UserSummary) => {
    setUser(next);
    onChanged();
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const changes: UserUpdate = {};
    if (displayName.trim() !== user.display_name) changes.display_name = displayName.trim();
    if (facility !== user.facility.id) changes.facility_id = facility;
    if (!sameRoles(roles, user.roles)) changes.roles = roles;
    setErrors(NO_ERRORS);
    setSaveNote(null);
    if (!roles.length) {
      setErrors({ fields: { roles: tu.pickRole }, general: null });
      return;
    }
    if (!Object.keys(changes).length) {
      setSaveNote(tu.noChanges);
      return;
    }
    setBusy(true);
    try {
      const next = await updateUser(user.id, changes);
      accept(next);
      setRoles(next.roles);
      setSaveNote(tu.saved);
    } catch (err) {
      setErrors(formErrors(err, t, FIELDS));
    } finally {
      setBusy(false);
    }
  };

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setActionFailure(null);
    setNote(null);
    try {
      await what();
    } catch (err) {
      setActionFailure(actionError(err, t));
    } finally {
      setBusy(false);
    }
  };

  const doReset = (e: FormEvent) => {
    e.preventDefault();
    setPasswordError(null);
    void (async () => {
      setBusy(true);
      try {
        const next = await resetPassword(user.id, newPassword);
        accept(next);
        setShownPassword(newPassword);
        setNewPassword("");
        setPending(null);
      } catch (err) {
        setPasswordError(formErrors(err, t, ["password"]).fields.password ?? actionError(err, t));
      } finally {
        setBusy(false);
      }
    })();
  };

  return (
    <Modal title={tu.manageTitle(user.display_name)} onClose={onClose} testId="user-dialog" wide>
      <div className="adm-user-head">
        <code data-testid="user-dialog-username">{user.username}</code>
        <UserStatusBadges user={user} />
        {user.last_login_at ? (
          <span className="muted adm-small">
            {tu.lastLogin} {shanghaiDateTime(user.last_login_at, false)}
          </span>
        ) : null}
      </div>
      {self ? <p className="adm-note">{tu.selfHint}</p> : null}
      {platformTarget ? <p className="adm-note">{tu.platformOnly}</p> : null}

      <form className="adm-form adm-section" onSubmit={save} noValidate data-testid="user-edit-form">
        <h3>{tu.basics}</h3>
        <div className="adm-form-grid">
          <Field label={tu.displayName} name="display_name" error={errors.fields.display_name}>
            <input
              className="adm-input"
              value={displayName}
              onChange={(e) => setDisplayName(e.target.value)}
              maxLength={200}
              data-testid="user-edit-display-name"
              aria-invalid={!!errors.fields.display_name || undefined}
            />
          </Field>
          <Field label={tu.facility} name="facility_id" error={errors.fields.facility_id}>
            <FacilitySelect
              flat={flat}
              value={facility}
              onChange={setFacility}
              filter={(n) => n.active || n.id === user.facility.id}
              testId="user-edit-facility"
              invalid={!!errors.fields.facility_id}
              disabled={self}
            />
          </Field>
        </div>
        <RolePicker
          value={roles}
          onChange={setRoles}
          grantable={grantable}
          error={errors.fields.roles}
          hint={addsAdmin && !user.mfa_enrolled ? tu.adminNeedsTotp : undefined}
        />
        {errors.general ? (
          <p className="form-error" role="alert" data-testid="user-form-error">
            {errors.general}
          </p>
        ) : null}
        <div className="adm-actions">
          {saveNote ? (
            <span className="adm-ok-text" role="status" data-testid="user-save-note">
              {saveNote}
            </span>
          ) : null}
          <button type="submit" className="btn btn-primary" disabled={busy || platformTarget} data-testid="user-save">
            {busy ? t.admin.saving : tu.saveChanges}
          </button>
        </div>
      </form>

      <section className="adm-section" data-testid="user-security">
        <h3>{tu.security}</h3>
        {shownPassword ? (
          <div className="adm-once-box" data-testid="user-password-reset-done">
            <p>{tu.passwordReset}</p>
            <PasswordOnce password={shownPassword} testId="user-new-password" />
          </div>
        ) : null}
        {enrolment ? <TotpEnrolmentView enrolment={enrolment} account={user.username} /> : null}
        {note ? (
          <p className="adm-ok-text" role="status" data-testid="user-action-note">
            {note}
          </p>
        ) : null}
        {actionFailure ? (
          <p className="form-error" role="alert" data-testid="user-action-error">
            {actionFailure}
          </p>
        ) : null}

        <ul className="adm-security">
          <li>
            <div>
              <strong>{tu.resetPassword}</strong>
              <p className="muted adm-small">{tu.resetPasswordHint}</p>
              {pending === "reset" ? (
                <form className="adm-inline-form" onSubmit={doReset} noValidate data-testid="user-reset-form">
                  <Field label={tu.newPassword} name="password" error={passwordError ?? undefined} hint={tu.passwordHint}>
                    <span className="adm-input-row">
                      <input
                        className="adm-input adm-mono"
                        type="text"
                        value={newPassword}
                        onChange={(e) => setNewPassword(e.target.value)}
                        autoComplete="new-password"
                        data-testid="user-reset-password-input"
                        aria-invalid={!!passwordError || undefined}
                      />
                      <button
                        type="button"
                        className="btn btn-secondary btn-small"
                        onClick={() => setNewPassword(generatePassword())}
                        data-testid="user-reset-generate"
                      >
                        {tu.generate}
                      </button>
                    </span>
                  </Field>
                  <div className="adm-actions">
                    <button type="button" className="btn btn-ghost btn-small" onClick={() => setPending(null)}>
                      {t.admin.cancel}
                    </button>
                    <button type="submit" className="btn btn-primary btn-small" disabled={busy} data-testid="user-reset-submit">
                      {tu.setPassword}
                    </button>
                  </div>
                </form>
              ) : null}
            </div>
            {pending === "reset" ? null : (
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={busy || platformTarget}
                onClick={() => {
                  setShownPassword(null);
                  setPasswordError(null);
                  setNewPassword(generatePassword());
                  setPending("reset");
                }}
                data-testid="user-reset-password"
              >
                {tu.resetPassword}
              </button>
            )}
          </li>
          <li>
            <div>
              <strong>{tu.unlock}</strong>
              <p className="muted adm-small">{locked || user.failed_attempts ? tu.unlockHint : tu.notLocked}</p>
            </div>
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={busy || platformTarget || (!locked && !user.failed_attempts)}
              onClick={() =>
                void run(async () => {
                  accept(await unlockUser(user.id));
                  setNote(tu.unlocked);
                })
              }
              data-testid="user-unlock"
            >
              {tu.unlock}
            </button>
          </li>
          <li>
            <div>
              <strong>{tu.enrolTotp}</strong>
              <p className="muted adm-small">{tu.enrolTotpHint}</p>
              {pending === "totp" ? (
                <div className="adm-confirm" data-testid="user-enrol-confirm-box">
                  <span>{tu.enrolTotpConfirm}</span>
                  <button type="button" className="btn btn-ghost btn-small" onClick={() => setPending(null)}>
                    {t.admin.cancel}
                  </button>
                  <button
                    type="button"
                    className="btn btn-primary btn-small"
                    disabled={busy}
                    onClick={() =>
                      void run(async () => {
                        const got = await enrolTotp(user.id);
                        setEnrolment(got);
                        setUser((u) => ({ ...u, mfa_enrolled: true }));
                        onChanged();
                        setPending(null);
                      })
                    }
                    data-testid="user-enrol-confirm"
                  >
                    {t.admin.confirm}
                  </button>
                </div>
              ) : null}
            </div>
            {pending === "totp" ? null : (
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={busy || platformTarget}
                onClick={() => {
                  setEnrolment(null);
                  setPending("totp");
                }}
                data-testid="user-enrol-totp"
              >
                {tu.enrolTotp}
              </button>
            )}
          </li>
          <li>
            <div>
              <strong>{user.active ? tu.deactivate : tu.reactivate}</strong>
              <p className="muted adm-small">{self ? tu.selfHint : user.active ? tu.deactivateHint : tu.reactivateHint}</p>
              {pending === "deactivate" ? (
                <div className="adm-confirm adm-confirm-danger" data-testid="user-deactivate-confirm-box">
                  <span>{tu.deactivateConfirm(user.display_name)}</span>
                  <button type="button" className="btn btn-ghost btn-small" onClick={() => setPending(null)}>
                    {t.admin.cancel}
                  </button>
                  <button
                    type="button"
                    className="btn btn-danger btn-small"
                    disabled={busy}
                    onClick={() =>
                      void run(async () => {
                        accept(await deactivateUser(user.id));
                        setNote(tu.deactivated(user.display_name));
                        setPending(null);
                      })
                    }
                    data-testid="user-deactivate-confirm"
                  >
                    {tu.deactivate}
                  </button>
                </div>
              ) : null}
            </div>
            {pending === "deactivate" ? null : user.active ? (
              <button
                type="button"
                className="btn btn-secondary btn-small adm-danger-text"
                disabled={busy || self || platformTarget}
                onClick={() => setPending("deactivate")}
                data-testid="user-deactivate"
              >
                {tu.deactivate}
              </button>
            ) : (
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={busy || platformTarget}
                onClick={() =>
                  void run(async () => {
                    accept(await updateUser(user.id, { active: true }));
                    setNote(tu.reactivated(user.display_name));
                  })
                }
                data-testid="user-reactivate"
              >
                {tu.reactivate}
              </button>
            )}
          </li>
        </ul>
      </section>
      <div className="adm-actions">
        <button type="button" className="btn btn-secondary" onClick={onClose} data-testid="user-dialog-close">
          {t.admin.close}
        </button>
      </div>
    </Modal>
  );
}
