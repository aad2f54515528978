// Which notifications an alert state change makes: one delivery per webhook, one for the e-mail
// recipients together. The monitor writes them with the check run (one transaction); the deliverer
// sends them (deliverer.ts).
import type { AlertEvent, NewDelivery } from '../../store/monitor-types.js';
import type { MonitorSettings } from '../settings.js';

export function deliveriesFor(
  event: AlertEvent,
  settings: Pick<MonitorSettings, 'webhooks' | 'email'>,
): NewDelivery[] {
  const deliveries: NewDelivery[] = settings.webhooks.map((w) => ({
    channel: 'webhook',
    target: w.url,
    event,
  }));
  if (settings.email !== undefined && settings.email.to.length > 0) {
    deliveries.push({ channel: 'email', target: settings.email.to.join(', '), event });
  }
  return deliveries;
}
