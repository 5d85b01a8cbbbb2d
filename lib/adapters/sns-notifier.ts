import { PublishCommand, SNSClient, type SNSClientConfig } from '@aws-sdk/client-sns';
import type { Notifier } from '../core/ports.ts';

/** Publishes a failed run's message to the alarm topic, which e-mails its subscribers. */
export class SnsNotifier implements Notifier {
  private readonly client: Pick<SNSClient, 'send'>;

  constructor(
    private readonly topicArn: string,
    options: { client?: Pick<SNSClient, 'send'>; clientConfig?: SNSClientConfig } = {},
  ) {
    this.client = options.client ?? new SNSClient(options.clientConfig ?? {});
  }

  async notify(subject: string, body: string): Promise<void> {
    await this.client.send(new PublishCommand({ TopicArn: this.topicArn, Subject: subject, Message: body }));
  }
}
