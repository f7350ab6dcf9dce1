"""XOR with a 2-4-1 sigmoid network: backpropagation written out step by step."""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(s):
    # s is already sigmoid(x)
    return s * (1 - s)


def train(inputs, expected_output, epochs=10000, lr=0.5, hidden_neurons=4):
    n_features = inputs.shape[1]
    # random weights and biases in [0, 1)
    hidden_weights = np.random.uniform(size=(n_features, hidden_neurons))
    hidden_bias = np.random.uniform(size=(1, hidden_neurons))
    output_weights = np.random.uniform(size=(hidden_neurons, 1))
    output_bias = np.random.uniform(size=(1, 1))

    for epoch in range(epochs):
        # forward pass
        hidden_layer_output = sigmoid(inputs @ hidden_weights + hidden_bias)
        predicted_output = sigmoid(hidden_layer_output @ output_weights + output_bias)

        # backpropagation
        error = expected_output - predicted_output
        d_predicted_output = error * sigmoid_derivative(predicted_output)

        error_hidden_layer = d_predicted_output @ output_weights.T   # FIX: back-propagate the output delta, not the prediction
        d_hidden_layer = error_hidden_layer * sigmoid_derivative(hidden_layer_output)

        # update weights and biases
        output_weights += lr * hidden_layer_output.T @ d_predicted_output
        output_bias += lr * np.sum(d_predicted_output, axis=0, keepdims=True)
        hidden_weights += lr * inputs.T @ d_hidden_layer
        hidden_bias += lr * np.sum(d_hidden_layer, axis=0, keepdims=True)

        if epoch % 1000 == 0:
            print("epoch", epoch, "mean squared error", np.mean(error ** 2))

    return hidden_weights, hidden_bias, output_weights, output_bias


def predict(inputs, hidden_weights, hidden_bias, output_weights, output_bias):
    hidden = sigmoid(inputs @ hidden_weights + hidden_bias)
    return sigmoid(hidden @ output_weights + output_bias)


def main():
    np.random.seed(42)
    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    expected_output = np.array([[0], [1], [1], [0]])

    params = train(inputs, expected_output)
    output = predict(inputs, *params)
    print("Output from neural network after 10,000 epochs:")
    print(output.round(4))
    print("Predictions:", (output > 0.5).astype(int).ravel())


if __name__ == "__main__":
    main()
