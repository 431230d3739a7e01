/**
 * Protocol-wide limits. Servers enforce them; clients may use them to validate early.
 * Changing one is a protocol change: document it in docs/api.md.
 */
export const Limits = {
  /** Longest message body, in UTF-16 code units (what JavaScript's `length` counts). */
  messageBodyMaxLength: 4000,
  /** Longest client message id. */
  clientMessageIdMaxLength: 64,
  /** Longest group title or display name. */
  titleMaxLength: 128,
  displayNameMaxLength: 64,
  usernameMinLength: 3,
  usernameMaxLength: 32,
  passwordMinLength: 8,
  passwordMaxLength: 256,
  /** Members a group may hold, and members one request may add. */
  groupMaxMembers: 10000,
  membersPerRequestMax: 1000,
  /** Page sizes. */
  pageSizeDefault: 50,
  pageSizeMax: 200,
  syncMessagesDefault: 200,
  syncMessagesMax: 1000,
  syncCursorsMax: 10000,
  /** Sends one gateway call to the message service may carry (POST /internal/v1/send-batch). */
  sendBatchMaxItems: 64,
} as const;
