"""Amazon Bedrock's Converse API: the model-neutral chat shape of AWS, translated to and from
the canonical model.  (Bedrock's InvokeModel speaks Claude's own Anthropic body and needs no
dialect.)"""
