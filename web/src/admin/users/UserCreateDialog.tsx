/**
 * Create an account: username, name, facility (from the tree), roles, initial password. For an
 * administrator the answer carries the authenticator enrolment, shown here once as a QR code.
 */
import { useState, type FormEvent } from "react";
import type { Role } from "../../api/session";
import { useI18n } from "../../i18n";
import { ADMIN_ROLES, createUser, type FacilityNode, type UserCreated } from "../api";
import { formErrors, NO_ERRORS, type FormErrors } from "../errors";
import { FacilitySelect } from "../FacilitySelect";
import { Field } from "../format";
import { Modal } from "../Modal";
import { generatePassword } from "../password";
import { RolePicker } from "./RolePicker";
import { PasswordOnce, TotpEnrolmentView } from "./TotpEnrolmentView";

const FIELDS = ["username", "display_name", "facility_id", "roles", "password"];

export function UserCreateDialog({
  flat,
  grantable,
  initialFacility,
  onClose,
  onCreated,
}: {
  flat: { node: FacilityNode; depth: number }[];
  grantable: readonly Role[];
  initialFacility: string;
  onClose: () => void;
  onCreated: (user: UserCreated) => void;
}) {
  const { t } = useI18n();
  const tu = t.admin.users;
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [facility, setFacility] = useState(initialFacility);
  const [roles, setRoles] = useState<Role[]>([]);
  const [password, setPassword] = useState("");
  const [reveal, setReveal] = useState(false);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<{ user: UserCreated; password: string } | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (!facility) local.facility_id = tu.pickFacility;
    if (!roles.length) local.roles = tu.pickRole;
    if (Object.keys(local).length) {
      setErrors({ fields: local, general: null });
      return;
    }
    setBusy(true);
    setErrors(NO_ERRORS);
    try {
      const user = await createUser({
        username: username.trim().toLowerCase(),
        display_name: displayName.trim(),
        facility_id: facility,
        roles,
        password,
      });
      setCreated({ user, password });
      onCreated(user);
    } catch (err) {
      setErrors(formErrors(err, t, FIELDS, "username"));
    } finally {
      setBusy(false);
    }
  };

  if (created) {
    const { user } = created;
    return (
      <Modal title={tu.created(user.display_name)} onClose={onClose} testId="user-created-dialog" wide>
        <p>{tu.handOver}</p>
        <dl className="adm-handover">
          <div>
            <dt>{tu.username}</dt>
            <dd>
              <code data-testid="user-created-username">{user.username}</code>
            </dd>
          </div>
          <div>
            <dt>{tu.initialPassword}</dt>
            <dd>
              <PasswordOnce password={created.password} testId="user-created-password" />
            </dd>
          </div>
        </dl>
        {user.totp ? <TotpEnrolmentView enrolment={user.totp} account={user.username} /> : null}
        <div className="adm-actions">
          <button type="button" className="btn btn-primary" onClick={onClose} data-testid="user-created-done">
            {tu.done}
          </button>
        </div>
      </Modal>
    );
  }

  const wantsAdmin = roles.some((r) => ADMIN_ROLES.includes(r));
  const limited = !grantable.includes("platform_admin");
  return (
    <Modal title={tu.createTitle} onClose={onClose} testId="user-create-dialog" wide>
      <form className="adm-form" onSubmit={submit} noValidate data-testid="user-create-form">
        <div className="adm-form-grid">
          <Field label={tu.username} name="username" error={errors.fields.username} hint={tu.usernameHint}>
            <input
              className="adm-input adm-mono"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              maxLength={64}
              autoComplete="off"
              spellCheck={false}
              required
              data-testid="user-username"
              aria-invalid={!!errors.fields.username || undefined}
            />
          </Field>
          <Field label={tu.displayName} name="display_name" error={errors.fields.display_name}>
            <input
              className="adm-input"
              value={displayName}
              onChange={(e) => setDisplayName(e.target.value)}
              maxLength={200}
              required
              data-testid="user-display-name"
              aria-invalid={!!errors.fields.display_name || undefined}
            />
          </Field>
          <Field label={tu.facility} name="facility_id" error={errors.fields.facility_id}>
            <FacilitySelect
              flat={flat}
              value={facility}
              onChange={setFacility}
              emptyLabel=""
              filter={(n) => n.active}
              testId="user-facility"
              invalid={!!errors.fields.facility_id}
            />
          </Field>
          <Field label={tu.password} name="password" error={errors.fields.password} hint={tu.passwordHint}>
            <span className="adm-input-row">
              <input
                className="adm-input adm-mono"
                type={reveal ? "text" : "password"}
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete="new-password"
                required
                data-testid="user-password"
                aria-invalid={!!errors.fields.password || undefined}
              />
              <button type="button" className="btn btn-ghost btn-small" onClick={() => setReveal((v) => !v)}>
                {reveal ? tu.hide : tu.show}
              </button>
              <button
                type="button"
                className="btn btn-secondary btn-small"
                onClick={() => {
                  setPassword(generatePassword());
                  setReveal(true);
                }}
                data-testid="user-password-generate"
              >
                {tu.generate}
              </button>
            </span>
          </Field>
        </div>
        <RolePicker
          value={roles}
          onChange={setRoles}
          grantable={grantable}
          error={errors.fields.roles}
          hint={wantsAdmin ? tu.adminRoleHint : limited ? tu.grantLimited : undefined}
        />
        {errors.general ? (
          <p className="form-error" role="alert" data-testid="user-form-error">
            {errors.general}
          </p>
        ) : null}
        <div className="adm-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            {t.admin.cancel}
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy} data-testid="user-create-submit">
            {busy ? tu.creating : tu.create}
          </button>
        </div>
      </form>
    </Modal>
  );
}
