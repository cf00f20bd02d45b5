/**
 * The obligation lifecycle (test/integration/lifecycle.ts) on dynalite — or, with
 * OC_DYNAMODB_ENDPOINT set, on any other DynamoDB by endpoint alone, e.g.
 * LocalStack: `OC_DYNAMODB_ENDPOINT=http://localhost:4566 node --import tsx --test test/integration/lifecycle.test.ts`.
 */
import { describeLifecycle } from './lifecycle.ts';

const endpoint = process.env.OC_DYNAMODB_ENDPOINT;

describeLifecycle(endpoint ? `(DynamoDB at ${endpoint})` : '(dynalite)', () => (endpoint ? { dynamoEndpoint: endpoint } : {}));
