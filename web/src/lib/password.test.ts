import { describe, expect, it } from 'vitest';
import { newPasswordProblem, waitMinutes } from './password';

describe('newPasswordProblem', () => {
  it('accepts a new, long enough, repeated password', () => {
    expect(newPasswordProblem('admin', 'one-time-pw', 'correct horse', 'correct horse')).toBeNull();
  });
  it('refuses a short one, the old one, the name and a wrong repeat', () => {
    expect(newPasswordProblem('admin', 'old-password', 'short', 'short')).toBe('short');
    expect(newPasswordProblem('admin', 'old-password', 'old-password', 'old-password')).toBe('same');
    expect(newPasswordProblem('administrator', 'old-password', 'administrator', 'administrator')).toBe('name');
    expect(newPasswordProblem('admin', 'old-password', 'new-password', 'new-passw0rd')).toBe('repeat');
  });
});

describe('waitMinutes', () => {
  it('rounds Retry-After up to whole minutes, at least one', () => {
    expect(waitMinutes(900)).toBe(15);
    expect(waitMinutes(899)).toBe(15);
    expect(waitMinutes(5)).toBe(1);
    expect(waitMinutes(0)).toBe(1);
  });
  it('is null without a Retry-After', () => {
    expect(waitMinutes(null)).toBeNull();
    expect(waitMinutes(Number.NaN)).toBeNull();
  });
});
