// The checks the change-password form makes before asking the server (which checks again:
// docs/api.md#users-and-sessions), and the wait a locked name is told.
export type PasswordProblem = 'repeat' | 'same' | 'short' | 'name' | null;

/** What is wrong with the new password, or null: the server's rules, checked early. */
export function newPasswordProblem(user: string, oldPassword: string, next: string, repeat: string): PasswordProblem {
  if (next.length < 8) return 'short';
  if (next === oldPassword) return 'same';
  if (user !== '' && next === user) return 'name';
  if (next !== repeat) return 'repeat';
  return null;
}

/** Retry-After seconds as whole minutes to wait (at least 1), or null without one. */
export function waitMinutes(retryAfter: number | null): number | null {
  if (retryAfter === null || !Number.isFinite(retryAfter) || retryAfter < 0) return null;
  return Math.max(1, Math.ceil(retryAfter / 60));
}
