/** An answer from the platform that was not 2xx, in the platform's error shape {"error", "detail"}. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  /** Seconds from the Retry-After header, when the server sent one. */
  readonly retryAfter: number | null;
  /** The whole decoded body, for fields beyond error/detail (e.g. locked_until). */
  readonly body: Record<string, unknown>;

  constructor(status: number, code: string, detail: string, retryAfter: number | null, body: Record<string, unknown>) {
    super(`${status} ${code}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
    this.body = body;
  }

  static async from(response: Response): Promise<ApiError> {
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = await response.json();
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      // not JSON (a proxy's HTML page, an empty body): keep the status alone
    }
    const header = response.headers.get("Retry-After");
    const seconds = header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null;
    const code = typeof body.error === "string" ? body.error : `http_${response.status}`;
    const detail = typeof body.detail === "string" ? body.detail : response.statusText;
    return new ApiError(response.status, code, detail, seconds, body);
  }
}

/** The request never got an answer (server down, network cut). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super("network error");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

/** fetch that turns a failure to connect into NetworkError. */
export async function send(input: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(input, { credentials: "same-origin", ...init });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new NetworkError(err);
  }
}
