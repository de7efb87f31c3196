/** A <select> of the facilities from the tree, indented by depth ("清河县 / 　清河县人民医院 / …"). */
import { useI18n } from "../i18n";
import type { FacilityNode } from "./api";
import { nameOf } from "./format";

export function FacilitySelect({
  flat,
  value,
  onChange,
  emptyLabel,
  filter,
  testId,
  id,
  invalid,
  disabled,
}: {
  flat: { node: FacilityNode; depth: number }[];
  value: string;
  onChange: (id: string) => void;
  /** The first option's label (value ""); none when absent. */
  emptyLabel?: string;
  /** Facilities that may be chosen; the others are listed (for the tree's shape) but disabled. */
  filter?: (node: FacilityNode) => boolean;
  testId?: string;
  id?: string;
  invalid?: boolean;
  disabled?: boolean;
}) {
  const { t, lang } = useI18n();
  return (
    <select
      id={id}
      className="adm-input"
      value={value}
      onChange={(e) => onChange(e.target.value)}
      data-testid={testId}
      aria-invalid={invalid || undefined}
      disabled={disabled}
    >
      {emptyLabel !== undefined ? <option value="">{emptyLabel}</option> : null}
      {flat.map(({ node, depth }) => {
        const usable = filter ? filter(node) : true;
        return (
          <option key={node.id} value={node.id} disabled={!usable} data-code={node.code}>
            {"\u3000".repeat(depth)}
            {nameOf(node, lang)}
            {node.active ? "" : `（${t.admin.facilities.inactive}）`}
          </option>
        );
      })}
    </select>
  );
}
