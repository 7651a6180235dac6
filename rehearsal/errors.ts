/** The rehearsal found something that would fail in a deployment, or could not rehearse the assembly. */
export class RehearsalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RehearsalError';
  }
}
