/**
 * Typed rejections, after Interledger's error classes:
 * - final (F): the request is wrong and will never succeed as sent;
 * - temporary (T): it may succeed later without change (e.g. credit frees up);
 * - retry (R): a dependency failed; send the same thing again.
 * They are mapped to HTTP and MQTT replies in exactly one place (functions/shared/errors.ts).
 */
export type ErrorClass = 'final' | 'temporary' | 'retry';

export class ObligationError extends Error {
  readonly code: string;
  readonly errorClass: ErrorClass;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: string, errorClass: ErrorClass, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.errorClass = errorClass;
    this.details = details;
  }
  /** The same error (same class, message and code) with `more` added to its details. */
  withDetails(more: Record<string, unknown>): this {
    const copy = Object.create(Object.getPrototypeOf(this)) as this;
    Object.defineProperties(copy, Object.getOwnPropertyDescriptors(this));
    Object.defineProperty(copy, 'details', { value: { ...this.details, ...more }, enumerable: true });
    return copy;
  }

  toJSON(): { code: string; class: ErrorClass; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, class: this.errorClass, message: this.message }
      : { code: this.code, class: this.errorClass, message: this.message, details: this.details };
  }
}

const define = (code: string, errorClass: ErrorClass) =>
  class extends ObligationError {
    static readonly code = code;
    constructor(message: string, details?: Record<string, unknown>) {
      super(code, errorClass, message, details);
    }
  };

/** Input is not well-formed or not canonical. */
export class MalformedError extends define('F00_MALFORMED', 'final') {}
/** A signature does not verify. */
export class BadSignatureError extends define('F01_BAD_SIGNATURE', 'final') {}
/** The device credential is invalid, of the wrong domain, or not valid now. */
export class BadCredentialError extends define('F02_BAD_CREDENTIAL', 'final') {}
/** The obligation or offer has expired, or its dates are inconsistent. */
export class ExpiredError extends define('F03_EXPIRED', 'final') {}
/** A payment term shorter than the provider's minimum, or a provider minimum that does not exceed the settlement interval. */
export class TermTooShortError extends define('F12_TERM_TOO_SHORT', 'final') {}
/** The device's key was revoked by its domain (a signed revocation record, honoured at every hub). */
export class RevokedError extends define('F14_REVOKED', 'final') {}
/** The obligation id or device sequence has been seen before. */
export class ReplayError extends define('F04_REPLAY', 'final') {}
/** prev/seq do not continue the device's chain. */
export class ChainBreakError extends define('F05_CHAIN_BREAK', 'final') {}
/** The obligation does not match the offer (price, provider, service, payTo). */
export class OfferMismatchError extends define('F06_OFFER_MISMATCH', 'final') {}
/** An unknown domain (no record on the ledger). */
export class UnknownDomainError extends define('F07_UNKNOWN_DOMAIN', 'final') {}
/** The caller is not allowed to do this. */
export class ForbiddenError extends define('F08_FORBIDDEN', 'final') {}
/** The thing asked for does not exist. */
export class NotFoundError extends define('F09_NOT_FOUND', 'final') {}
/** A record read from the shared ledger is malformed, wrongly signed, or published by someone else than its domain's hub. */
export class InvalidRecordError extends define('F10_INVALID_RECORD', 'final') {}
/** The thing exists already with other settings (e.g. a domain registered with another role): nothing was changed. */
export class AlreadyExistsError extends define('F13_EXISTS', 'final') {}
/**
 * The ledger node refuses this one item for good (too large for a transaction,
 * rejected by the node's verification): publishing it again as is never works.
 * The publish job parks it with this error and goes on with the others.
 */
export class LedgerRefusedError extends define('F15_LEDGER_REFUSED', 'final') {}
/**
 * The ledger node cannot serve this hub as configured (wrong chain name, a
 * publisher address not in the node's wallet): nothing will publish until an
 * operator fixes the configuration. Shown by the health route and the publish job's log.
 */
export class LedgerMisconfiguredError extends define('F16_LEDGER_MISCONFIGURED', 'final') {}
/** An address is well-formed but belongs to another Bitcoin network than the one this hub pays on. */
export class WrongNetworkError extends define('F17_WRONG_NETWORK', 'final') {}
/** A fee bump would pay more per virtual byte than the hub's fee policy allows (its cap): not built. */
export class FeeCapError extends define('F18_FEE_CAP', 'final') {}
/**
 * A standing offer's cap is used up: the obligations accepted under it already add up to
 * so much that this amount would exceed the cap. The device asks for a new offer.
 */
export class OfferExhaustedError extends define('F20_OFFER_EXHAUSTED', 'final') {}
/** The consumer domain's reputation is below the provider's threshold. */
export class ReputationTooLowError extends define('T01_REPUTATION_TOO_LOW', 'temporary') {}
/** Outstanding + amount would exceed the consumer domain's (or device's) credit limit. */
export class OverCreditError extends define('T02_OVER_CREDIT', 'temporary') {}
/** A dependency (ledger, bitcoind, store) is unavailable; retry the same request. */
export class UnavailableError extends define('R01_UNAVAILABLE', 'retry') {}
/** A concurrent write won; retry the same request. */
export class ConflictError extends define('R02_CONFLICT', 'retry') {}
