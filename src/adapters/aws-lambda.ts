// Placeholder, replaced by the Lambda adapter: NodejsFunction (infra/aws) needs its entry file to exist to synth.
export const handler = async () => ({ statusCode: 503 });
