/**
 * The accounts the caller administers: search, filters (facility, role, status), pages of 20, and
 * the create / manage dialogs. Platform admins see every account; facility admins their subtree's.
 */
import { useCallback, useEffect, useState } from "react";
import type { Role } from "../../api/session";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { ALL_ROLES, FACILITY_ADMIN_GRANTS, listUsers, type UserPage, type UserSummary } from "../api";
import { FacilitySelect } from "../FacilitySelect";
import { nameOf, SEARCH_DELAY_MS, shanghaiDateTime } from "../format";
import type { FacilityTreeState } from "../useFacilityTree";
import { UserCreateDialog } from "./UserCreateDialog";
import { UserManageDialog } from "./UserManageDialog";
import { UserStatusBadges } from "./UserStatusBadges";

const PAGE_SIZE = 20;
type ActiveFilter = "" | "true" | "false";

export function UsersPanel({ tree, onNotice }: { tree: FacilityTreeState; onNotice: (text: string) => void }) {
  const { t, lang } = useI18n();
  const tu = t.admin.users;
  const me = useUser();
  const isPlatform = me.roles.includes("platform_admin");
  const grantable: Role[] = isPlatform ? ALL_ROLES : FACILITY_ADMIN_GRANTS;

  const [text, setText] = useState("");
  const [q, setQ] = useState("");
  const [facility, setFacility] = useState("");
  const [subtree, setSubtree] = useState(true);
  const [role, setRole] = useState<Role | "">("");
  const [active, setActive] = useState<ActiveFilter>("");
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<UserPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const [creating, setCreating] = useState(false);
  const [managing, setManaging] = useState<UserSummary | null>(null);

  // search as you type, after a short pause
  useEffect(() => {
    const timer = setTimeout(() => {
      setQ(text.trim());
      setOffset(0);
    }, SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [text]);

  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    let live = true;
    setLoading(true);
    listUsers({
      q: q || undefined,
      facility_id: facility || undefined,
      include_descendants: facility ? subtree : undefined,
      role: role || undefined,
      active: active === "" ? undefined : active === "true",
      limit: PAGE_SIZE,
      offset,
    })
      .then((p) => {
        if (!live) return;
        setPage(p);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [q, facility, subtree, role, active, offset, tick]);

  const filterChanged = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    setOffset(0);
  };

  const pages = page ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : 1;
  const current = Math.floor(offset / PAGE_SIZE) + 1;
  const defaultFacility = facility || (isPlatform ? "" : me.facility.id);

  return (
    <div className="adm-users" data-testid="users-panel">
      <div className="adm-filters" data-testid="users-filters">
        <input
          className="adm-input adm-search"
          type="search"
          placeholder={tu.search}
          aria-label={tu.search}
          value={text}
          onChange={(e) => setText(e.target.value)}
          data-testid="users-search"
        />
        <FacilitySelect
          flat={tree.flat}
          value={facility}
          onChange={filterChanged(setFacility)}
          emptyLabel={tu.allFacilities}
          testId="users-filter-facility"
        />
        {facility ? (
          <label className="adm-check">
            <input
              type="checkbox"
              checked={subtree}
              onChange={(e) => filterChanged(setSubtree)(e.target.checked)}
              data-testid="users-filter-subtree"
            />
            {tu.withSubtree}
          </label>
        ) : null}
        <select
          className="adm-input"
          value={role}
          onChange={(e) => filterChanged(setRole)(e.target.value as Role | "")}
          aria-label={tu.role}
          data-testid="users-filter-role"
        >
          <option value="">{tu.allRoles}</option>
          {ALL_ROLES.map((r) => (
            <option key={r} value={r}>
              {t.roles[r]}
            </option>
          ))}
        </select>
        <select
          className="adm-input"
          value={active}
          onChange={(e) => filterChanged(setActive)(e.target.value as ActiveFilter)}
          aria-label={tu.status}
          data-testid="users-filter-active"
        >
          <option value="">{tu.anyStatus}</option>
          <option value="true">{tu.active}</option>
          <option value="false">{tu.inactive}</option>
        </select>
        <span className="adm-toolbar-spacer" />
        <button
          type="button"
          className="btn btn-primary"
          onClick={() => setCreating(true)}
          disabled={!tree.roots}
          data-testid="user-new"
        >
          + {tu.newUser}
        </button>
      </div>

      {error && !page ? (
        <ErrorState error={error} onRetry={reload} />
      ) : !page ? (
        <Loading />
      ) : (
        <>
          {error ? <ErrorState error={error} onRetry={reload} /> : null}
          {page.items.length === 0 ? (
            <EmptyState title={tu.empty}>{tu.emptyHint}</EmptyState>
          ) : (
            <table className={loading ? "adm-table adm-stale" : "adm-table"} data-testid="users-table" aria-busy={loading}>
              <thead>
                <tr>
                  <th>{tu.username}</th>
                  <th>{tu.displayName}</th>
                  <th>{tu.facility}</th>
                  <th>{tu.roles}</th>
                  <th>{tu.status}</th>
                  <th>{tu.lastLogin}</th>
                  <th aria-label={tu.manage} />
                </tr>
              </thead>
              <tbody>
                {page.items.map((u) => (
                  <tr
                    key={u.id}
                    className={u.active ? undefined : "adm-inactive"}
                    data-testid="user-row"
                    data-id={u.id}
                    data-username={u.username}
                    data-active={u.active ? "true" : "false"}
                  >
                    <td>
                      <code>{u.username}</code>
                    </td>
                    <td className="adm-nowrap">
                      {u.display_name}
                      {u.id === me.id ? <span className="muted">{tu.you}</span> : null}
                    </td>
                    <td data-testid="user-facility-name">{nameOf(u.facility, lang)}</td>
                    <td>
                      <span className="adm-badges">
                        {[...u.roles].sort((a, b) => ALL_ROLES.indexOf(a) - ALL_ROLES.indexOf(b)).map((r) => (
                          <span key={r} className={`badge adm-role-badge adm-role-${r}`} data-role={r}>
                            {t.roles[r] ?? r}
                          </span>
                        ))}
                      </span>
                    </td>
                    <td>
                      <UserStatusBadges user={u} />
                    </td>
                    <td className="adm-nowrap muted">
                      {u.last_login_at ? shanghaiDateTime(u.last_login_at, false) : tu.never}
                    </td>
                    <td className="adm-num">
                      <button
                        type="button"
                        className="btn btn-secondary btn-small"
                        onClick={() => setManaging(u)}
                        data-testid="user-manage"
                      >
                        {tu.manage}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <div className="adm-pager" data-testid="users-pager">
            <span className="muted" data-testid="users-total">
              {tu.total(page.total)}
            </span>
            <span className="adm-toolbar-spacer" />
            <span className="muted">{tu.page(current, pages)}</span>
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={offset === 0 || loading}
              onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}
              data-testid="users-prev"
            >
              {tu.prev}
            </button>
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={offset + PAGE_SIZE >= page.total || loading}
              onClick={() => setOffset(offset + PAGE_SIZE)}
              data-testid="users-next"
            >
              {tu.next}
            </button>
          </div>
        </>
      )}

      {creating ? (
        <UserCreateDialog
          flat={tree.flat}
          grantable={grantable}
          initialFacility={defaultFacility}
          onClose={() => setCreating(false)}
          onCreated={(u) => {
            onNotice(tu.created(u.display_name));
            reload();
          }}
        />
      ) : null}
      {managing ? (
        <UserManageDialog
          key={managing.id}
          initial={managing}
          flat={tree.flat}
          grantable={grantable}
          onClose={() => setManaging(null)}
          onChanged={reload}
        />
      ) : null}
    </div>
  );
}
