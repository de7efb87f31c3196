/**
 * The facility tree as an indented list: kind and level badges, codes, reading-centre relationships, and
 * the actions the API allows the caller (a facility admin: their own subtree, never deactivating their
 * own facility). Shared by the platform admin's 机构 page and the facility admin's 机构用户 page.
 */
import { useMemo, useState } from "react";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { useFacilityLabel } from "../../shell/facility";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { childKinds, updateFacility, type FacilityNode } from "../api";
import { actionError } from "../errors";
import { KindBadge, LevelBadge, nameOf, otherNameOf } from "../format";
import { Modal } from "../Modal";
import type { FacilityTreeState } from "../useFacilityTree";
import { FacilityDialog, type FacilityDialogMode } from "./FacilityDialog";

export function FacilityTreePanel({ tree, onNotice }: { tree: FacilityTreeState; onNotice: (text: string) => void }) {
  const { t, lang } = useI18n();
  const tf = t.admin.facilities;
  const user = useUser();
  const isPlatform = user.roles.includes("platform_admin");
  const outsideLabel = useFacilityLabel();
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<FacilityDialogMode | null>(null);
  const [toggling, setToggling] = useState<FacilityNode | null>(null);
  const [toggleError, setToggleError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const served = useMemo(() => {
    const counts = new Map<string, number>();
    for (const { node } of tree.flat) {
      if (node.reading_centre_id) counts.set(node.reading_centre_id, (counts.get(node.reading_centre_id) ?? 0) + 1);
    }
    return counts;
  }, [tree.flat]);

  if (tree.error && !tree.roots) return <ErrorState error={tree.error} onRetry={tree.reload} />;
  if (!tree.roots) return <Loading />;

  const hidden = (node: FacilityNode): boolean => {
    for (let id = node.parent_id; id; id = tree.byId.get(id)?.parent_id ?? null) {
      if (collapsed.has(id)) return true;
      if (!tree.byId.has(id)) break;
    }
    return false;
  };
  const toggle = (id: string) =>
    setCollapsed((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const inactive = tree.flat.filter(({ node }) => !node.active).length;
  /** The reading centre a facility reads through when it names none itself: its nearest ancestor's. */
  const inheritedCentre = (node: FacilityNode): string | null => {
    if (node.reading_centre_id || node.kind === "region" || node.kind === "hospital") return null;
    for (let id = node.parent_id; id; ) {
      const up = tree.byId.get(id);
      if (!up || up.kind === "hospital" || up.kind === "region") return null;
      if (up.reading_centre_id) return up.reading_centre_id;
      id = up.parent_id;
    }
    return null;
  };
  const centreName = (id: string) => {
    const found = tree.byId.get(id);
    return found ? nameOf(found, lang) : outsideLabel(id);
  };

  const setActive = async (node: FacilityNode, active: boolean) => {
    setBusy(true);
    setToggleError(null);
    try {
      await updateFacility(node.id, { active });
      onNotice(active ? tf.reactivated(nameOf(node, lang)) : tf.deactivated(nameOf(node, lang)));
      setToggling(null);
      tree.reload();
    } catch (err) {
      setToggleError(actionError(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="adm-tree-panel" data-testid="facility-tree-panel">
      <div className="adm-toolbar">
        <span className="muted" data-testid="facility-count">
          {tf.count(tree.flat.length, inactive)}
        </span>
        <span className="adm-toolbar-spacer" />
        <button type="button" className="btn btn-ghost btn-small" onClick={() => setCollapsed(new Set())}>
          {tf.expandAll}
        </button>
        <button
          type="button"
          className="btn btn-ghost btn-small"
          onClick={() => setCollapsed(new Set(tree.flat.filter(({ node }) => node.children.length).map(({ node }) => node.id)))}
        >
          {tf.collapseAll}
        </button>
        {isPlatform ? (
          <button
            type="button"
            className="btn btn-secondary btn-small"
            onClick={() => setDialog({ mode: "create", parent: null })}
            data-testid="facility-new-root"
          >
            + {tf.newRoot}
          </button>
        ) : null}
      </div>
      {tree.flat.length === 0 ? (
        <EmptyState title={tf.empty}>{isPlatform ? tf.emptyHint : null}</EmptyState>
      ) : (
        <ul className="adm-tree" role="tree" data-testid="facility-tree">
          {tree.flat
            .filter(({ node }) => !hidden(node))
            .map(({ node, depth }) => {
              const own = !isPlatform && node.id === user.facility.id;
              const canAdd = node.active && childKinds(node.kind).length > 0;
              const serves = served.get(node.id) ?? 0;
              const open = !collapsed.has(node.id);
              return (
                <li
                  key={node.id}
                  role="treeitem"
                  aria-level={depth + 1}
                  aria-expanded={node.children.length ? open : undefined}
                  className={node.active ? "adm-tree-row" : "adm-tree-row adm-inactive"}
                  style={{ paddingLeft: 10 + depth * 26 }}
                  data-testid="facility-row"
                  data-id={node.id}
                  data-code={node.code}
                  data-kind={node.kind}
                  data-depth={depth}
                  data-active={node.active ? "true" : "false"}
                >
                  {Array.from({ length: depth }, (_, i) => (
                    <span key={i} className="adm-tree-guide" style={{ left: 19 + i * 26 }} aria-hidden="true" />
                  ))}
                  {node.children.length ? (
                    <button
                      type="button"
                      className="adm-tree-toggle"
                      onClick={() => toggle(node.id)}
                      aria-label={open ? tf.collapse : tf.expand}
                      title={open ? tf.collapse : tf.expand}
                    >
                      {open ? "▾" : "▸"}
                    </button>
                  ) : (
                    <span className="adm-tree-toggle adm-tree-leaf" aria-hidden="true">
                      •
                    </span>
                  )}
                  <div className="adm-tree-main">
                    <div className="adm-tree-name">
                      <KindBadge kind={node.kind} />
                      <strong data-testid="facility-name">{nameOf(node, lang)}</strong>
                      {otherNameOf(node, lang) ? <span className="muted adm-small">{otherNameOf(node, lang)}</span> : null}
                      <code className="adm-code" data-testid="facility-code-text">
                        {node.code}
                      </code>
                      <LevelBadge level={node.level} />
                      {own ? <span className="badge adm-own">{tf.ownFacility}</span> : null}
                      {node.active ? null : (
                        <span className="badge adm-badge-inactive" data-testid="facility-inactive">
                          {tf.inactive}
                        </span>
                      )}
                    </div>
                    <div className="adm-tree-meta">
                      {node.reading_centre_id ? (
                        <span className="adm-centre" data-testid="facility-reading-centre">
                          {tf.readingCentre(centreName(node.reading_centre_id))}
                        </span>
                      ) : null}
                      {!node.reading_centre_id && inheritedCentre(node) ? (
                        <span className="adm-centre adm-centre-inherited" data-testid="facility-reading-centre-inherited">
                          {tf.readingCentreInherited(centreName(inheritedCentre(node) as string))}
                        </span>
                      ) : null}
                      {serves ? (
                        <span className="adm-serves" data-testid="facility-serves">
                          {tf.serves(serves)}
                        </span>
                      ) : null}
                    </div>
                  </div>
                  <div className="adm-tree-actions">
                    {canAdd ? (
                      <button
                        type="button"
                        className="btn btn-ghost btn-small"
                        onClick={() => setDialog({ mode: "create", parent: node })}
                        data-testid="facility-add-child"
                      >
                        + {tf.addChild}
                      </button>
                    ) : null}
                    <button
                      type="button"
                      className="btn btn-ghost btn-small"
                      onClick={() => setDialog({ mode: "edit", facility: node })}
                      data-testid="facility-edit"
                    >
                      {tf.edit}
                    </button>
                    {own ? (
                      <span className="btn btn-ghost btn-small adm-disabled" title={tf.ownFacilityHint}>
                        {tf.deactivate}
                      </span>
                    ) : node.active ? (
                      <button
                        type="button"
                        className="btn btn-ghost btn-small adm-danger-text"
                        onClick={() => {
                          setToggleError(null);
                          setToggling(node);
                        }}
                        data-testid="facility-deactivate"
                      >
                        {tf.deactivate}
                      </button>
                    ) : (
                      <button
                        type="button"
                        className="btn btn-ghost btn-small"
                        onClick={() => void setActive(node, true)}
                        disabled={busy}
                        data-testid="facility-reactivate"
                      >
                        {tf.reactivate}
                      </button>
                    )}
                  </div>
                </li>
              );
            })}
        </ul>
      )}
      {toggleError && !toggling ? (
        <p className="form-error" role="alert" data-testid="facility-action-error">
          {toggleError}
        </p>
      ) : null}

      {dialog ? (
        <FacilityDialog
          target={dialog}
          byId={tree.byId}
          flat={tree.flat}
          onClose={() => setDialog(null)}
          onSaved={(saved, created) => {
            setDialog(null);
            onNotice(created ? tf.created(nameOf(saved, lang)) : tf.updated(nameOf(saved, lang)));
            tree.reload();
          }}
        />
      ) : null}

      {toggling ? (
        <Modal title={tf.deactivateTitle(nameOf(toggling, lang))} onClose={() => setToggling(null)} testId="facility-deactivate-dialog">
          <p>{tf.deactivateBody}</p>
          {toggleError ? (
            <p className="form-error" role="alert" data-testid="facility-action-error">
              {toggleError}
            </p>
          ) : null}
          <div className="adm-actions">
            <button type="button" className="btn btn-ghost" onClick={() => setToggling(null)}>
              {t.admin.cancel}
            </button>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => void setActive(toggling, false)}
              disabled={busy}
              data-testid="facility-deactivate-confirm"
            >
              {tf.deactivate}
            </button>
          </div>
        </Modal>
      ) : null}
    </div>
  );
}
