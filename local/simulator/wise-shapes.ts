import type { SimulatedProfile, SimulatedUser } from './users.ts';

// JSON shaped like Wise's own answers, with made-up but plausible details.

/** `GET /v1/me` */
export function meJson(user: SimulatedUser): Record<string, unknown> {
  const [firstName, ...rest] = user.fullName.split(' ');
  return {
    id: user.id,
    name: user.fullName,
    email: user.email,
    active: true,
    details: {
      firstName: firstName ?? user.fullName,
      lastName: rest.join(' '),
      phoneNumber: '+447700900123',
      occupation: null,
      address: address(user.id),
      dateOfBirth: '1990-01-01',
      avatar: null,
      primaryAddress: user.id,
    },
  };
}

/** `GET /v2/profiles` */
export function profilesJson(user: SimulatedUser): Record<string, unknown>[] {
  return user.profiles.map((profile) => profileJson(user, profile));
}

/** `POST /v1/user/signup/registration_code` */
export function signupJson(user: SimulatedUser): Record<string, unknown> {
  return { id: user.id, name: null, email: user.email, active: true, details: null };
}

function profileJson(user: SimulatedUser, profile: SimulatedProfile): Record<string, unknown> {
  const common = {
    id: profile.id,
    publicId: `${profile.id.toString(16).padStart(8, '0')}-0000-4000-8000-${user.id.toString(16).padStart(12, '0')}`,
    userId: user.id,
    type: profile.type,
    address: address(profile.id),
    email: user.email,
    createdAt: user.createdAt,
    updatedAt: user.createdAt,
    obfuscated: false,
    avatar: null,
    currentState: 'VISIBLE',
    contactDetails: { email: user.email, phoneNumber: '+447700900123' },
    fullName: profile.fullName,
  };
  if (profile.type === 'BUSINESS') {
    return {
      ...common,
      businessName: profile.fullName,
      registrationNumber: String(profile.id).padStart(8, '0'),
      descriptionOfBusiness: 'IT_SERVICES',
      companyType: 'LIMITED',
      companyRole: 'OWNER',
      webpage: 'https://example.com',
      businessCategory: 'IT_SERVICES',
    };
  }
  const [firstName, ...rest] = profile.fullName.split(' ');
  return {
    ...common,
    firstName: firstName ?? profile.fullName,
    lastName: rest.join(' '),
    preferredName: null,
    dateOfBirth: '1990-01-01',
    phoneNumber: '+447700900123',
  };
}

function address(id: number): Record<string, unknown> {
  return {
    id,
    addressFirstLine: '56 Shoreditch High Street',
    city: 'London',
    countryIso2Code: 'GB',
    countryIso3Code: 'gbr',
    postCode: 'E1 6JJ',
    stateCode: null,
  };
}
