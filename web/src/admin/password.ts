/** A random temporary password that meets the gateway's policy (gateway/identity/passwords.py). */
const LOWER = "abcdefghijkmnpqrstuvwxyz"; // no l, o: easy to read aloud and copy by hand
const UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"; // no I, O
const DIGITS = "23456789"; // no 0, 1
const SYMBOLS = "@#%+=!?";

function pick(alphabet: string, n: number): string[] {
  const values = new Uint32Array(n);
  crypto.getRandomValues(values);
  return Array.from(values, (v) => alphabet.charAt(v % alphabet.length));
}

/** 12 characters with every class present, shuffled. */
export function generatePassword(length = 12): string {
  const chars = [
    ...pick(UPPER, 2),
    ...pick(DIGITS, 2),
    ...pick(SYMBOLS, 1),
    ...pick(LOWER, Math.max(3, length - 5)),
  ];
  const order = new Uint32Array(chars.length);
  crypto.getRandomValues(order);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = order[i]! % (i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join("");
}
