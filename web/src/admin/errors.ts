/**
 * The API's 422 / 409 answers as messages next to the form fields they are about. The gateway words a
 * validation problem as "field: message" (several joined by "; "), a duplicate as a sentence naming it.
 */
import { ApiError } from "../api/errors";
import type { Dictionary } from "../i18n";
import { errorMessage } from "../ui/states";

export interface FormErrors {
  /** field name -> message, for the fields the form shows */
  fields: Record<string, string>;
  /** what belongs to no shown field (403s, conflicts of other kinds, network trouble) */
  general: string | null;
}

/** Between two "field: message" parts (a message may itself hold "; "). */
const FIELD_SEPARATOR = /;\s+(?=[A-Za-z_][\w.]*:\s)/;

export const NO_ERRORS: FormErrors = { fields: {}, general: null };

/** An API message in the reader's language where it is a known one; otherwise as the server sent it. */
export function translateApiMessage(message: string, t: Dictionary): string {
  const text = message.replace(/^Value error, /, "").trim();
  for (const [pattern, replacement] of t.admin.apiMessages) {
    if (pattern.test(text)) return text.replace(pattern, replacement);
  }
  return text;
}

/** "code: already taken" -> { field: "code", message: "already taken" }; no field when there is none. */
function splitField(part: string): { field: string | null; message: string } {
  const match = /^([A-Za-z_][\w.]*):\s*(.*)$/.exec(part);
  if (!match) return { field: null, message: part };
  return { field: (match[1] ?? "").split(".")[0] || null, message: match[2] ?? "" };
}

/**
 * Split an error into per-field messages. ``known`` are the fields the form shows; ``conflictField`` is
 * the field a 409 is about (a facility's code, a user's name).
 */
export function formErrors(err: unknown, t: Dictionary, known: readonly string[], conflictField?: string): FormErrors {
  if (!(err instanceof ApiError) || err.status >= 500) return { fields: {}, general: errorMessage(err, t) };
  const detail = err.detail || "";
  if (err.status === 409 && conflictField) {
    return { fields: { [conflictField]: translateApiMessage(detail, t) }, general: null };
  }
  if (err.status === 422) {
    const fields: Record<string, string> = {};
    const rest: string[] = [];
    for (const part of detail.split(FIELD_SEPARATOR)) {
      const { field, message } = splitField(part);
      const text = translateApiMessage(message, t);
      if (field && known.includes(field)) {
        fields[field] = fields[field] ? `${fields[field]}；${text}` : text;
      } else {
        rest.push(field ? `${field}: ${text}` : text);
      }
    }
    return { fields, general: rest.length ? rest.join("；") : null };
  }
  return { fields: {}, general: translateApiMessage(detail, t) || errorMessage(err, t) };
}

/** A plain message for an action's failure (no form fields). */
export function actionError(err: unknown, t: Dictionary): string {
  if (err instanceof ApiError && err.status < 500 && err.detail) {
    return err.detail
      .split(FIELD_SEPARATOR)
      .map((part) => translateApiMessage(splitField(part).message, t))
      .join("；");
  }
  return errorMessage(err, t);
}
