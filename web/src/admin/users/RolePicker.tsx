/** Role checkboxes; roles the caller may not grant are shown disabled (a facility admin's limits). */
import type { Role } from "../../api/session";
import { useI18n } from "../../i18n";
import { ALL_ROLES, ADMIN_ROLES } from "../api";

export function RolePicker({
  value,
  onChange,
  grantable,
  error,
  hint,
}: {
  value: Role[];
  onChange: (roles: Role[]) => void;
  grantable: readonly Role[];
  error?: string;
  hint?: string;
}) {
  const { t } = useI18n();
  const toggle = (role: Role, on: boolean) =>
    onChange(on ? ALL_ROLES.filter((r) => r === role || value.includes(r)) : value.filter((r) => r !== role));
  // a role the user already holds stays listed even where the caller cannot grant it
  const shown = ALL_ROLES.filter((r) => grantable.includes(r) || value.includes(r));
  return (
    <fieldset className={error ? "adm-field adm-fieldset adm-field-invalid" : "adm-field adm-fieldset"} data-field="roles">
      <legend className="adm-label">{t.admin.users.roles}</legend>
      <div className="adm-roles" data-testid="user-roles-picker">
        {shown.map((role) => (
          <label key={role} className={value.includes(role) ? "adm-role adm-role-on" : "adm-role"}>
            <input
              type="checkbox"
              checked={value.includes(role)}
              disabled={!grantable.includes(role)}
              onChange={(e) => toggle(role, e.target.checked)}
              data-testid={`user-role-${role}`}
            />
            <span>{t.roles[role]}</span>
            {ADMIN_ROLES.includes(role) ? <span className="adm-role-mfa">TOTP</span> : null}
          </label>
        ))}
      </div>
      {error ? (
        <span className="adm-field-error" role="alert" data-testid="field-error-roles">
          {error}
        </span>
      ) : hint ? (
        <span className="adm-hint">{hint}</span>
      ) : null}
    </fieldset>
  );
}
