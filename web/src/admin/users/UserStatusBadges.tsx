/** Active / deactivated, locked, and the authenticator state of an account, as badges. */
import { useI18n } from "../../i18n";
import { ADMIN_ROLES, type UserSummary } from "../api";
import { shanghaiDateTime } from "../format";

export function UserStatusBadges({ user }: { user: UserSummary }) {
  const { t } = useI18n();
  const tu = t.admin.users;
  const locked = !!user.locked_until && new Date(user.locked_until).getTime() > Date.now();
  const isAdmin = user.roles.some((r) => ADMIN_ROLES.includes(r));
  return (
    <span className="adm-badges adm-status" data-testid="user-status" data-active={user.active ? "true" : "false"}>
      {user.active ? (
        <span className="badge adm-badge-ok">{tu.active}</span>
      ) : (
        <span className="badge adm-badge-inactive" data-testid="user-inactive">
          {tu.inactive}
        </span>
      )}
      {locked ? (
        <span className="badge adm-badge-bad" data-testid="user-locked">
          {tu.locked(shanghaiDateTime(user.locked_until as string, false).slice(5))}
        </span>
      ) : user.failed_attempts ? (
        <span className="badge adm-badge-warn">{tu.failedAttempts(user.failed_attempts)}</span>
      ) : null}
      {user.mfa_enrolled ? (
        <span className="badge adm-badge-mfa" data-testid="user-mfa">
          {tu.mfa}
        </span>
      ) : isAdmin ? (
        <span className="badge adm-badge-warn" data-testid="user-no-mfa">
          {tu.noMfa}
        </span>
      ) : null}
    </span>
  );
}
