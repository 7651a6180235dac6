import { z } from 'zod';
import type { SimulatorClock } from './clock.ts';

/** Wise's two kinds of profile. */
export const ProfileType = z.enum(['PERSONAL', 'BUSINESS']);
export type ProfileType = z.infer<typeof ProfileType>;

const PositiveId = z.number().int().positive();

/** A profile of a simulated user. */
export const SimulatedProfile = z.object({ id: PositiveId, type: ProfileType, fullName: z.string() });
export type SimulatedProfile = z.infer<typeof SimulatedProfile>;

/**
 * A Wise user the simulator knows; `registration` is set for users a partner signed up through the API.
 * The schema checks users read back from a state file.
 */
export const SimulatedUser = z.object({
  id: PositiveId,
  email: z.string().min(1),
  fullName: z.string(),
  profiles: z.array(SimulatedProfile),
  createdAt: z.iso.datetime(),
  registration: z
    .object({ code: z.string().min(1), language: z.string(), reclaimed: z.boolean() })
    .optional(),
});
export type SimulatedUser = z.infer<typeof SimulatedUser>;

/** What it takes to add a user. */
export interface NewUser {
  email: string;
  fullName?: string | undefined;
  profiles?: { type: ProfileType; fullName?: string | undefined }[] | undefined;
  registration?: { code: string; language: string } | undefined;
}

/** The simulated users; a new directory holds one default user with a personal and a business profile. */
export class UserDirectory {
  readonly #users = new Map<number, SimulatedUser>();
  readonly #clock: SimulatorClock;
  #nextUserId = 5550001;
  #nextProfileId = 16550001;

  /** `saved`: the users of an earlier run, in place of the default user. */
  constructor(clock: SimulatorClock, saved?: readonly SimulatedUser[]) {
    this.#clock = clock;
    if (saved) {
      for (const user of saved) {
        this.#users.set(user.id, user);
        this.#nextUserId = Math.max(this.#nextUserId, user.id + 1);
        for (const { id } of user.profiles) this.#nextProfileId = Math.max(this.#nextProfileId, id + 1);
      }
      return;
    }
    this.add({
      email: 'alex.morgan@example.com',
      fullName: 'Alex Morgan',
      profiles: [
        { type: 'PERSONAL', fullName: 'Alex Morgan' },
        { type: 'BUSINESS', fullName: 'Morgan Trading Ltd' },
      ],
    });
  }

  list(): SimulatedUser[] {
    return [...this.#users.values()];
  }

  find(id: number): SimulatedUser | undefined {
    return this.#users.get(id);
  }

  /** Emails compare without regard to case, as they do at Wise. */
  findByEmail(email: string): SimulatedUser | undefined {
    const wanted = email.toLowerCase();
    return this.list().find((user) => user.email.toLowerCase() === wanted);
  }

  /** Adds a user; `undefined` when the email is taken. Without profiles the user gets one personal profile. */
  add(newUser: NewUser): SimulatedUser | undefined {
    if (this.findByEmail(newUser.email)) return undefined;
    const fullName = newUser.fullName ?? nameFromEmail(newUser.email);
    const profiles = (newUser.profiles ?? [{ type: 'PERSONAL' as const }]).map((profile) => ({
      id: this.#nextProfileId++,
      type: profile.type,
      fullName: profile.fullName ?? (profile.type === 'PERSONAL' ? fullName : `${fullName} Ltd`),
    }));
    const user: SimulatedUser = {
      id: this.#nextUserId++,
      email: newUser.email,
      fullName,
      profiles,
      createdAt: new Date(this.#clock.now()).toISOString(),
    };
    if (newUser.registration) user.registration = { ...newUser.registration, reclaimed: false };
    this.#users.set(user.id, user);
    return user;
  }
}

/** `jo.bloggs@example.com` becomes `Jo Bloggs`. */
function nameFromEmail(email: string): string {
  const local = email.split('@')[0] ?? email;
  const words = local.split(/[._+-]+/).filter((word) => word !== '');
  return words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join(' ') || email;
}
