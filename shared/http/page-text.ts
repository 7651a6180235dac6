import type { PageLanguage } from '#shared/config/broker-config.ts';

/**
 * Every word the connect pages show, per language, in one place. To offer another language, add its
 * tag to `PAGE_LANGUAGES` in `shared/config/broker-config.ts` and its text here: the type checker then
 * asks for every entry. Texts are plain; the pages escape them.
 */

/** What a page reports: the same words as the `status` query parameter of a return URL. */
export type PageStatus = 'connected' | 'denied' | 'error';

/** The three texts of an outcome page. */
export interface OutcomeText {
  /** The page's heading, a few words. */
  title: string;
  /** What happened, in a sentence or two. */
  message: string;
  /** What the person can do now. */
  advice: string;
}

/** What a text may name: the partner (its brand name, when configured) and a few numbers. */
export interface TextContext {
  /** The partner's name; the texts say "the application" without one. */
  app?: string | undefined;
}

/** Every text of the pages in one language. */
export interface PageText {
  /** The `lang` attribute of the page. */
  htmlLang: string;
  /** The browser tab's title. */
  documentTitle: (title: string, context: TextContext) => string;
  statusLabels: Record<PageStatus, string>;
  /** Before the connection id. */
  connection: string;
  /** The link back to the return URL. */
  backLink: (context: TextContext) => string;
  /** The support link. */
  contactSupport: (context: TextContext) => string;
  /** The logo's alternative text. */
  logoAlt: (context: TextContext) => string;
  connected: (context: TextContext & { replacedConnectionId?: string | undefined }) => OutcomeText;
  malformed: (context: TextContext) => OutcomeText;
  crashed: (context: TextContext) => OutcomeText;
  otherBrowser: (context: TextContext) => OutcomeText;
  unknownState: (context: TextContext) => OutcomeText;
  expiredState: (context: TextContext & { minutes: number }) => OutcomeText;
  denied: (context: TextContext) => OutcomeText;
  authorizationFailed: (context: TextContext) => OutcomeText;
  codeRejected: (context: TextContext) => OutcomeText;
  profileNotOwned: (context: TextContext) => OutcomeText;
  unavailable: (context: TextContext & { minutes: number }) => OutcomeText;
  failed: (context: TextContext) => OutcomeText;
}

const english = (() => {
  const app = ({ app }: TextContext) => app ?? 'the application';
  const startAgain = (context: TextContext) =>
    `Go back to ${app(context)} and start connecting your Wise account again.`;
  const support = ({ app }: TextContext) =>
    app === undefined ? "the application's support" : `${app} support`;
  return {
    htmlLang: 'en',
    documentTitle: (title, { app }) => `${title} · ${app ?? 'Wise connection'}`,
    statusLabels: { connected: 'Connected', denied: 'Not connected', error: 'Something went wrong' },
    connection: 'Connection',
    backLink: (context) => `Back to ${context.app ?? 'the application'}`,
    contactSupport: (context) => `Contact ${support(context)}`,
    logoAlt: ({ app }) => (app === undefined ? 'Logo' : `${app} logo`),
    connected: (context) => {
      const done = `${context.app ?? 'The application'} can now work with your Wise account on your behalf.`;
      return {
        title: 'Your Wise account is connected',
        message:
          context.replacedConnectionId === undefined
            ? done
            : `${done} This Wise account was connected before as "${context.replacedConnectionId}": that earlier connection no longer works.`,
        advice: 'You can close this page. You can remove the access at any time in your Wise settings.',
      };
    },
    malformed: (context) => ({
      title: 'This link is incomplete',
      message: "The address is missing parts of Wise's answer, or they were changed on the way.",
      advice: startAgain(context),
    }),
    crashed: (context) => ({
      title: 'Your Wise account could not be connected',
      message: 'Something went wrong on our side while finishing the connection.',
      advice: `Please try again in a few minutes. ${startAgain(context)} If it keeps happening, contact ${support(context)}.`,
    }),
    otherBrowser: (context) => ({
      title: 'Finish connecting in the browser where you started',
      message:
        'This page was opened in a browser that did not start the connection, so nothing was connected. This protects your account from connection links sent by someone else.',
      advice: startAgain(context),
    }),
    unknownState: (context) => ({
      title: 'This connection link is not valid',
      message:
        'Each connection link works only once, in the browser that opened it, and this one has already been used, was opened elsewhere, or was never issued.',
      advice: startAgain(context),
    }),
    expiredState: (context) => ({
      title: 'This connection link has expired',
      message: `Connection links are valid for ${context.minutes} minutes, and this one is older.`,
      advice: startAgain(context),
    }),
    denied: (context) => ({
      title: 'Your Wise account was not connected',
      message: `You declined access on Wise's page, so nothing was shared with ${app(context)}.`,
      advice: `If that was a mistake, go back to ${app(context)} and start connecting again.`,
    }),
    authorizationFailed: (context) => ({
      title: 'Wise could not complete the authorization',
      message: 'Wise reported a problem instead of confirming the connection.',
      advice: `${startAgain(context)} If it keeps happening, contact ${support(context)}.`,
    }),
    codeRejected: (context) => ({
      title: 'Wise did not accept this authorization',
      message: 'The authorization from Wise had expired or had already been used.',
      advice: startAgain(context),
    }),
    profileNotOwned: (context) => ({
      title: 'The chosen Wise profile could not be confirmed',
      message: 'The profile in the answer from Wise does not belong to the Wise account that signed in.',
      advice: `Start connecting again from ${app(context)} and choose one of your own profiles.`,
    }),
    unavailable: (context) => ({
      title: 'Wise is not available right now',
      message: 'Wise did not answer in time, so your account was not connected.',
      advice: `Please wait about ${context.minutes === 1 ? 'a minute' : `${context.minutes} minutes`}, then start connecting again from ${app(context)}.`,
    }),
    failed: (context) => ({
      title: 'Your Wise account could not be connected',
      message: 'Wise did not accept the request to finish the connection. The operators have been told.',
      advice: `Please try again later. If it keeps happening, contact ${support(context)}.`,
    }),
  } satisfies PageText;
})();

const german = (() => {
  // "zu Acme Payments" reads well with a name; without one the noun needs its article.
  const toApp = ({ app }: TextContext) => (app === undefined ? 'zur Anwendung' : `zu ${app}`);
  const withApp = ({ app }: TextContext) => (app === undefined ? 'mit der Anwendung' : `mit ${app}`);
  const startAgain = (context: TextContext) =>
    `Kehren Sie ${toApp(context)} zurück und verbinden Sie Ihr Wise-Konto erneut.`;
  const support = ({ app }: TextContext) =>
    app === undefined ? 'den Support der Anwendung' : `den Support von ${app}`;
  return {
    htmlLang: 'de',
    documentTitle: (title, { app }) => `${title} · ${app ?? 'Wise-Verbindung'}`,
    statusLabels: { connected: 'Verbunden', denied: 'Nicht verbunden', error: 'Etwas ist schiefgelaufen' },
    connection: 'Verbindung',
    backLink: (context) => `Zurück ${toApp(context)}`,
    contactSupport: ({ app }) =>
      app === undefined ? 'Support kontaktieren' : `Support von ${app} kontaktieren`,
    logoAlt: ({ app }) => (app === undefined ? 'Logo' : `Logo von ${app}`),
    connected: (context) => {
      const done = `${context.app ?? 'Die Anwendung'} kann jetzt in Ihrem Auftrag mit Ihrem Wise-Konto arbeiten.`;
      return {
        title: 'Ihr Wise-Konto ist verbunden',
        message:
          context.replacedConnectionId === undefined
            ? done
            : `${done} Dieses Wise-Konto war zuvor als „${context.replacedConnectionId}“ verbunden: Diese frühere Verbindung funktioniert nicht mehr.`,
        advice:
          'Sie können diese Seite schließen. Den Zugriff können Sie jederzeit in Ihren Wise-Einstellungen entfernen.',
      };
    },
    malformed: (context) => ({
      title: 'Dieser Link ist unvollständig',
      message: 'Der Adresse fehlen Teile der Antwort von Wise, oder sie wurden unterwegs verändert.',
      advice: startAgain(context),
    }),
    crashed: (context) => ({
      title: 'Ihr Wise-Konto konnte nicht verbunden werden',
      message: 'Beim Abschließen der Verbindung ist bei uns ein Fehler aufgetreten.',
      advice: `Bitte versuchen Sie es in einigen Minuten erneut. ${startAgain(context)} Wenn es wieder passiert, wenden Sie sich an ${support(context)}.`,
    }),
    otherBrowser: (context) => ({
      title: 'Schließen Sie die Verbindung im Browser ab, in dem Sie begonnen haben',
      message:
        'Diese Seite wurde in einem Browser geöffnet, der die Verbindung nicht begonnen hat, daher wurde nichts verbunden. Das schützt Ihr Konto vor Verbindungslinks, die Ihnen jemand anderes schickt.',
      advice: startAgain(context),
    }),
    unknownState: (context) => ({
      title: 'Dieser Verbindungslink ist ungültig',
      message:
        'Jeder Verbindungslink funktioniert nur einmal und nur in dem Browser, der ihn geöffnet hat; dieser wurde bereits verwendet, anderswo geöffnet oder nie ausgestellt.',
      advice: startAgain(context),
    }),
    expiredState: (context) => ({
      title: 'Dieser Verbindungslink ist abgelaufen',
      message: `Verbindungslinks gelten ${context.minutes} Minuten, und dieser ist älter.`,
      advice: startAgain(context),
    }),
    denied: (context) => ({
      title: 'Ihr Wise-Konto wurde nicht verbunden',
      message: `Sie haben den Zugriff auf der Seite von Wise abgelehnt, daher wurde nichts ${withApp(context)} geteilt.`,
      advice: `Falls das ein Versehen war, kehren Sie ${toApp(context)} zurück und verbinden Sie erneut.`,
    }),
    authorizationFailed: (context) => ({
      title: 'Wise konnte die Autorisierung nicht abschließen',
      message: 'Wise hat ein Problem gemeldet, statt die Verbindung zu bestätigen.',
      advice: `${startAgain(context)} Wenn es wieder passiert, wenden Sie sich an ${support(context)}.`,
    }),
    codeRejected: (context) => ({
      title: 'Wise hat diese Autorisierung nicht angenommen',
      message: 'Die Autorisierung von Wise war abgelaufen oder wurde bereits verwendet.',
      advice: startAgain(context),
    }),
    profileNotOwned: (context) => ({
      title: 'Das gewählte Wise-Profil konnte nicht bestätigt werden',
      message:
        'Das Profil in der Antwort von Wise gehört nicht zu dem Wise-Konto, mit dem Sie sich angemeldet haben.',
      advice: `Verbinden Sie erneut ${context.app === undefined ? 'über die Anwendung' : `über ${context.app}`} und wählen Sie eines Ihrer eigenen Profile.`,
    }),
    unavailable: (context) => ({
      title: 'Wise ist gerade nicht erreichbar',
      message: 'Wise hat nicht rechtzeitig geantwortet, daher wurde Ihr Konto nicht verbunden.',
      advice: `Bitte warten Sie ${context.minutes === 1 ? 'etwa eine Minute' : `etwa ${context.minutes} Minuten`} und verbinden Sie dann erneut ${context.app === undefined ? 'über die Anwendung' : `über ${context.app}`}.`,
    }),
    failed: (context) => ({
      title: 'Ihr Wise-Konto konnte nicht verbunden werden',
      message:
        'Wise hat die Anfrage zum Abschließen der Verbindung nicht angenommen. Das Betriebsteam wurde informiert.',
      advice: `Bitte versuchen Sie es später erneut. Wenn es wieder passiert, wenden Sie sich an ${support(context)}.`,
    }),
  } satisfies PageText;
})();

/** The pages' text in every language the broker offers. */
export const PAGE_TEXT: Readonly<Record<PageLanguage, PageText>> = { en: english, de: german };
